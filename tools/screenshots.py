"""The README's screenshots of the page: `python -m tools.screenshots`.

Starts the whole system on free ports (or uses `--url` of a running one),
drives the page in headless Chromium as a person would (the soccer photo
compared with EfficientNet-Lite0 when the system serves it, the ball brushed
away, its class map on both images; an explanation laid over the image; the
same on a phone) and writes small PNGs to docs/: scaled and reduced to a
palette, each well under 150 KB.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from tools.page_driver import (
    SOCCER_BALL,
    browser_page,
    local_system,
    open_photo,
    remove_the_ball,
    show_class_map,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"
LIMIT_BYTES = 150_000
COMPARE_MODEL = "efficientnet-lite0"


def save_small(page, path: Path, scale: float) -> int:
    """The viewport as a palette PNG, scaled by `scale`; returns its size in bytes."""
    shot = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    if scale != 1:
        shot = shot.resize(
            (round(shot.width * scale), round(shot.height * scale)), Image.Resampling.LANCZOS
        )
    for colours in (256, 192, 128, 96):
        out = io.BytesIO()
        shot.quantize(
            colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        ).save(out, format="PNG", optimize=True)
        if out.tell() <= LIMIT_BYTES:
            break
    path.write_bytes(out.getvalue())
    return out.tell()


def compare_with(page, name: str) -> bool:
    """Choose `name` in "Compare with" if the system serves it; whether it did."""
    option = page.locator(f'#compare-select option[value="{name}"]')
    if not option.count() or option.is_disabled():
        return False
    page.select_option("#compare-select", name)
    page.wait_for_selector("#compare-table tbody tr[data-class-id]")
    return True


def shoot(url: str, out: Path) -> list[tuple[Path, int]]:
    made = []
    with browser_page(url, 1280, 720) as page:
        open_photo(page, "soccer", "Soccer")
        comparing = compare_with(page, COMPARE_MODEL)
        remove_the_ball(page)
        show_class_map(page, SOCCER_BALL)
        if comparing:
            page.wait_for_function(
                f"document.getElementById('compare-block').dataset.camClass === '{SOCCER_BALL}'"
            )
        page.mouse.move(0, 0)
        made.append(
            (out / "workbench-1280x720.png", save_small(page, out / "workbench-1280x720.png", 0.75))
        )

    with browser_page(url, 1280, 720) as page:
        open_photo(page, "soccer", "Soccer")
        page.click("#explain-run")
        page.wait_for_function(
            "document.querySelector('.explain-status').textContent.includes('windows of')",
            timeout=120_000,
        )
        page.click("#explain-region")
        page.evaluate("document.getElementById('explain-panel').scrollIntoView({block: 'end'})")
        page.mouse.move(0, 0)
        made.append(
            (out / "explain-1280x720.png", save_small(page, out / "explain-1280x720.png", 0.75))
        )

    with browser_page(url, 390, 844) as page:
        open_photo(page, "soccer", "Soccer")
        page.evaluate("document.getElementById('modified-panel').scrollIntoView({block: 'start'})")
        remove_the_ball(page)
        show_class_map(page, SOCCER_BALL)
        made.append((out / "phone-390x844.png", save_small(page, out / "phone-390x844.png", 0.75)))
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running system's page (default: start one on free ports)")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with local_system(args.url) as url:
        for path, size in shoot(url, args.out):
            print(f"{path}: {size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
