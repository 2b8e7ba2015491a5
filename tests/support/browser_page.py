"""Helpers of the page's browser tests: Chromium, a page on the real gateway,
and the gestures and readings a person's use of the page is made of."""

from __future__ import annotations

from contextlib import contextmanager

from tests.support.processes import ARTIFACTS
from tests.support.tools import require_executable

SCREENSHOTS = ARTIFACTS / "screenshots"
WORKING_SIZE = 227
# The soccer ball in soccer.jpg (227x227): centre and radius in pixels.
BALL_CENTRE = (40, 144)
BALL_RADIUS = 6
SOCCER_BALL = 805  # ImageNet class id of "soccer ball"
BUSY_DONE = "document.querySelector('#compare').getAttribute('aria-busy') === 'false'"


def launch_chromium():
    """Yield Debian's Chromium under Playwright, headless (the body of a fixture)."""
    chromium = require_executable("chromium", "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


def open_page(browser, url: str, **context_options):
    """Yield the page at `url` once its gallery is shown; fail on uncaught page errors."""
    context = browser.new_context(
        **{"viewport": {"width": 1200, "height": 1000}, **context_options}
    )
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    page.goto(url)
    page.wait_for_selector(".thumb", timeout=20_000)
    yield page
    context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


# The same, as a context manager for a test's own gateway or screen size.
page_at = contextmanager(open_page)


def screenshot(page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def choose_gallery_photo(page, photo_id: str, title: str) -> None:
    page.click(f'.thumb[data-image-id="{photo_id}"]')
    wait_for_classified(page, title)


def wait_for_classified(page, title: str) -> None:
    page.wait_for_function(
        """title => document.querySelector('#original-caption').textContent.includes(title)
             && document.querySelector('#original-table tbody tr[data-class-id]')
             && document.querySelector('#compare').getAttribute('aria-busy') === 'false'""",
        arg=title,
        timeout=30_000,
    )


def table_probabilities(page, table: str) -> dict[int, float]:
    rows = page.eval_on_selector_all(
        f"#{table} tbody tr[data-class-id]",
        "rows => rows.map(r => [Number(r.dataset.classId), Number(r.dataset.probability)])",
    )
    return dict(rows)


def set_brush_size(page, size: int) -> None:
    """Move the brush slider (without scrolling the page to it, as fill() would)."""
    page.eval_on_selector(
        "#brush-size", "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }", str(size)
    )


def drag(page, points: list[tuple[float, float]]) -> None:
    """A stroke through `points` given in pixels of the working copy."""
    box = page.locator("#paint-canvas").bounding_box()
    scale = box["width"] / WORKING_SIZE
    xs = [box["x"] + x * scale for x, _ in points]
    ys = [box["y"] + y * scale for _, y in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:], strict=True):
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def wait_for_edits(page, count: int) -> None:
    page.wait_for_function(
        f"""() => document.querySelector('#modified-caption').textContent
                    .startsWith('{count} edit') && {BUSY_DONE}""",
        timeout=30_000,
    )


RECORD_FORMS = """() => {
  // Keep a copy of every multipart request the page sends (the browser does not
  // expose Blob bodies to the test driver).
  window.sentForms = [];
  const send = window.fetch;
  window.fetch = async (url, init) => {
    if (init && init.body instanceof FormData) {
      const parts = {};
      for (const [name, value] of init.body.entries()) {
        parts[name] = value instanceof Blob
          ? Array.from(new Uint8Array(await value.arrayBuffer())) : value;
      }
      window.sentForms.push({ url: String(url), parts });
    }
    return send(url, init);
  };
}"""


def sent_forms(page, path: str) -> list[dict[str, bytes | str]]:
    forms = page.evaluate("() => window.sentForms")
    return [
        {k: bytes(v) if isinstance(v, list) else v for k, v in form["parts"].items()}
        for form in forms
        if form["url"].endswith(path)
    ]


def brush_over_the_ball(page, strokes: int = 2) -> None:
    """Strokes across the soccer ball with a 22 px brush; waits for every edit."""
    set_brush_size(page, 22)
    x0, x1 = BALL_CENTRE[0] - 14, BALL_CENTRE[0] + 14
    for i in range(strokes):
        y = BALL_CENTRE[1] - 6 + 12 * i / max(1, strokes - 1)
        drag(page, [(x0, y), (x1, y)])
    wait_for_edits(page, strokes)


def box_in_viewport(page, selector: str) -> dict:
    """The bounding box of `selector`, checked to lie wholly inside the viewport."""
    box = page.locator(selector).bounding_box()
    view = page.viewport_size
    assert box is not None, f"{selector} is not rendered"
    inside = (
        box["x"] >= -0.5
        and box["y"] >= -0.5
        and box["x"] + box["width"] <= view["width"] + 0.5
        and box["y"] + box["height"] <= view["height"] + 0.5
    )
    assert inside, f"{selector} at {box} is not inside the {view} viewport"
    return box


def accessibility_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of these impacts on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:4])
        for v in results.response["violations"]
        if v["impact"] in impacts
    ]
