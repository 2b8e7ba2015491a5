"""The Explain panel in headless Chromium: run it on a gallery photo, see the
hinder, support and competitor maps drawn with their ranges, and apply the
fix-it counterfactual as an ordinary undoable edit."""

from __future__ import annotations

import pytest

from tests.support.browser_page import choose_gallery_photo, launch_chromium, open_page
from tests.support.processes import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = ARTIFACTS / "screenshots"
RUGBY_BALL = 768


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


@pytest.fixture
def page(browser, gateway_service):
    yield from open_page(browser, gateway_service.url + "/")


def canvas_spread(page, selector: str) -> int:
    """Distinct colours on a canvas (a drawn map over a photo has many)."""
    return page.eval_on_selector(
        selector,
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  const seen = new Set();
                  for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
                  return seen.size; }""",
    )


def test_explain_draws_both_maps_and_fix_it_is_an_undoable_edit(page):
    # The page opens the first gallery photo by itself: wait until the soccer photo is
    # classified, or that photo's late "new photo" event would cancel the run.
    choose_gallery_photo(page, "soccer", "Soccer")
    # The default target is the top-1; explain the runner-up instead if it is the rugby ball.
    options = page.eval_on_selector_all("#explain-target option", "os => os.map(o => o.value)")
    if str(RUGBY_BALL) in options:
        page.select_option("#explain-target", str(RUGBY_BALL))
    page.click("#explain-run")
    page.wait_for_selector("#explain-panel progress:not([hidden])", timeout=10_000)
    page.wait_for_function(
        """() => ['hinder', 'support', 'competitor'].every(k =>
                 document.querySelector(`canvas[data-map="${k}"]`).dataset.drawn === 'true')""",
        timeout=60_000,
    )
    for kind in ("hinder", "support", "competitor"):
        assert canvas_spread(page, f'canvas[data-map="{kind}"]') > 50, kind
    legend = page.inner_text(".explain-view.hinder .explain-legend")
    assert "bits" in legend
    status = page.inner_text(".explain-status")
    assert "169 windows of 48 px" in status
    page.locator("#explain-panel").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "explain-panel.png"), full_page=True)

    assert page.is_enabled("#explain-fix")
    assert "Removing" in page.inner_text(".explain-fix-text")
    page.click("#explain-fix")
    page.wait_for_function(
        """() => document.querySelector('#modified-caption').textContent.startsWith('1 edit')
                 && !document.querySelector('#undo-button').disabled""",
        timeout=30_000,
    )
    assert "run it again" in page.inner_text(".explain-status")
    page.click("#undo-button")
    page.wait_for_function("() => document.querySelector('#undo-button').disabled", timeout=30_000)
