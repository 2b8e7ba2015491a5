"""Mouse-up to updated table, in the browser: `python bench/bench_page.py`.

Starts the whole system on free ports (or uses `--url`), opens the page in
headless Chromium at 1280x720 with the soccer photo and draws strokes one
after another (each waits for its edit, so none queues behind another). The
page marks every stroke's mouse-up and the frame that shows its updated table
(performance measure `stroke-to-table`); this prints their p50 and max next
to the gateway's own time for the same edits (timing_ms.total), so the
difference is what the browser and the HTTP round trip add.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.page_driver import browser_page, local_system, open_photo, stroke

# Short horizontal strokes spread over the photo (pixels of the 227 px copy).
STROKE_ROWS = [40, 70, 100, 130, 160, 190]


def run(url: str, strokes: int, backend: str) -> tuple[dict[str, list[float]], list[float]]:
    with browser_page(url, 1280, 720) as page:
        open_photo(page, "soccer", "Soccer")
        page.select_option("#backend-select", backend)
        for i in range(strokes):
            y = STROKE_ROWS[i % len(STROKE_ROWS)]
            x = 20 + 30 * (i // len(STROKE_ROWS)) % 180
            stroke(page, [(x, y), (x + 24, y)], i + 1, size=14)
        page.wait_for_function(
            f"performance.getEntriesByName('stroke-to-table').length === {strokes}", timeout=10_000
        )
        browser = {
            name: page.evaluate(f"performance.getEntriesByName('{name}').map(e => e.duration)")
            for name in ("stroke-to-table", "stroke-to-answer", "answer-to-rendered")
        }
        server = page.evaluate(
            """async () => { const { app } = await import('./js/app.js');
                 return app.history.entries.slice(1).map(e => e.ms); }"""
        )
    return browser, server


def describe(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):6.1f} ms   max {max(samples):6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running system's page (default: start one on free ports)")
    parser.add_argument("--strokes", type=int, default=12)
    parser.add_argument("--backend", default="telea")
    args = parser.parse_args(argv)
    if not shutil.which("chromium"):
        print("bench_page: skipped, it needs Debian's chromium (apt-get install chromium)")
        return 0
    with local_system(args.url) as url:
        browser, server = run(url, args.strokes, args.backend)
    print(f"{args.strokes} strokes, 227 px soccer photo, {args.backend}, 1280x720:")
    print(f"  mouse-up -> updated table (browser): {describe(browser['stroke-to-table'])}")
    print(f"    mouse-up -> answer arrived:        {describe(browser['stroke-to-answer'])}")
    print(f"    answer -> page drawn from it:      {describe(browser['answer-to-rendered'])}")
    print(f"  the same edits at the gateway:       {describe(server)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
