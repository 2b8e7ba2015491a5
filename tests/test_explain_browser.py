"""The Explain panel in headless Chromium: run it on a gallery photo, see the
hinder/support map laid over the image in the diverging colours with a legend
in bits, a competitor's map, the region fix-it would remove, and fix-it applied
as an ordinary undoable edit; the wording for a class that is already on top."""

from __future__ import annotations

import pytest

from tests.support.browser_page import (
    RECORD_FORMS,
    SOCCER_BALL,
    choose_gallery_photo,
    open_page,
    screenshot,
    sent_forms,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUGBY_BALL = 768
GOLF_BALL = 574
DONE = "document.querySelector('.explain-status').textContent.includes('windows of')"

# Opaque pixels of an overlay, split by hue: orange (hinders) and blue (supports).
HUES = """id => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let orange = 0, blue = 0, other = 0, opaque = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) continue;
    opaque++;
    if (d[i] > d[i + 2] + 20) orange++; else if (d[i + 2] > d[i] + 20) blue++; else other++;
  }
  return {orange, blue, other, opaque, pixels: c.width * c.height};
}"""


@pytest.fixture
def page(browser, gateway_service):
    yield from open_page(browser, gateway_service.url + "/")


def run_explain(page, target: int) -> None:
    page.select_option("#explain-target", str(target))
    page.click("#explain-run")
    page.wait_for_selector("#explain-panel progress:not([hidden])", timeout=10_000)
    assert page.is_visible("#explain-cancel")
    page.wait_for_function(DONE, timeout=90_000)


def test_maps_lie_over_the_image_and_fix_it_is_an_undoable_edit(page):
    # The page opens the first gallery photo by itself: wait until the soccer photo is
    # classified, or that photo's late "new photo" event would cancel the run.
    choose_gallery_photo(page, "soccer", "Soccer")
    assert page.is_hidden("#explain-cancel"), "Cancel shows only while an explanation runs"
    assert page.is_hidden("#explain-panel progress")
    run_explain(page, RUGBY_BALL)
    assert page.is_hidden("#explain-cancel")
    assert "169 windows of 48 px" in page.inner_text(".explain-status")

    # Hinders vs supports, over the image being explained, one diverging scheme.
    assert page.input_value("#map-select") == "net"
    hues = page.evaluate(HUES, "modified-cam")
    assert hues["orange"] > 100 and hues["blue"] > 100, hues
    assert page.text_content("#legend-low").startswith("−")
    assert page.text_content("#legend-high").endswith("bits")
    assert "rugby ball" in page.text_content("#legend-text")
    screenshot(page, "explain-over-the-image", full_page=False)

    # Each map from the list: hinders alone is orange only; a competitor is purple.
    page.click('.map-choice[data-map="hinder"]')
    hinder = page.evaluate(HUES, "modified-cam")
    assert hinder["orange"] > 100 and hinder["blue"] == 0
    assert hinder["opaque"] < hinder["pixels"] * 0.9, (
        "where nothing hinders, the map is transparent"
    )
    page.click('.map-choice[data-map="competitor-0"]')
    assert page.input_value("#map-select") == "competitor-0"
    assert page.evaluate(HUES, "modified-cam")["opaque"] > 100
    assert "competitor" in page.text_content("#legend-text").lower()

    # The region fix-it removes, shown before it is applied.
    assert "becomes the top class" in page.inner_text(
        ".explain-fix-text"
    ) or "the top class is" in page.inner_text(".explain-fix-text")
    page.click("#explain-region")
    assert page.get_attribute("#explain-region", "aria-pressed") == "true"
    region = page.evaluate(HUES, "region-preview")
    share = region["opaque"] / region["pixels"]
    # Outline and stripes of a region of 5% of the image (fix_fraction's default).
    assert 0.01 < share <= 0.05, share

    page.click("#explain-fix")
    page.wait_for_function(
        """() => document.querySelector('#modified-caption').textContent.startsWith('1 edit')
                 && !document.querySelector('#undo-button').disabled""",
        timeout=30_000,
    )
    assert "run it again" in page.inner_text(".explain-status")
    # The longer caption of a fix stays on one line: both images stay level.
    tops = [
        page.locator(f"#{c}").bounding_box()["y"] for c in ("original-canvas", "modified-canvas")
    ]
    assert tops[0] == tops[1]
    assert page.evaluate(HUES, "region-preview")["opaque"] == 0
    page.click("#undo-button")
    page.wait_for_function("() => document.querySelector('#undo-button').disabled", timeout=30_000)


def test_fix_it_for_the_top_class_says_it_already_is(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    # Any class can be the target: typed in the field, it is chosen and sent.
    page.fill("#explain-other", "golf ball")
    page.dispatch_event("#explain-other", "change")
    assert page.input_value("#explain-target") == str(GOLF_BALL)

    page.evaluate(RECORD_FORMS)
    run_explain(page, SOCCER_BALL)
    (sent,) = sent_forms(page, "/api/v1/explain")
    assert sent["target"] == str(SOCCER_BALL)
    text = page.inner_text(".explain-fix-text")
    assert "already the top class" in text
    assert "becomes the top class" not in text


# Every text the map status shows, in order, with how many overlay pixels are drawn.
RECORD_STATUS = """() => {
  window.__mapStates = [];
  const status = document.getElementById('cam-status');
  const canvas = document.getElementById('modified-cam');
  new MutationObserver(() => {
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) opaque++;
    window.__mapStates.push({text: status.textContent, opaque});
  }).observe(status, {childList: true, characterData: true, subtree: true});
}"""


def test_a_preview_map_is_drawn_before_the_final_one(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    page.evaluate(RECORD_STATUS)
    run_explain(page, RUGBY_BALL)
    states = page.evaluate("window.__mapStates")
    previews = [i for i, s in enumerate(states) if "(preview)" in s["text"]]
    finals = [
        i
        for i, s in enumerate(states)
        if s["text"].startswith("Explanation of") and "(preview)" not in s["text"]
    ]
    assert previews, f"no preview was drawn: {[s['text'] for s in states]}"
    assert finals and previews[0] < finals[-1]
    # The preview is a real map over the image, and the final one replaced it.
    assert states[previews[0]]["opaque"] > 100
    assert "(preview)" not in page.text_content("#cam-status")
    assert "Preview" not in page.text_content("#legend-text")


def test_without_the_explainer_the_panel_says_why_and_the_brush_still_works(
    browser, classifier_service, inpainter_service, images_dir
):
    from tests.gateway_fixtures import GatewayProcess
    from tests.support.browser_page import open_page

    # No explainer at the address the gateway is given.
    with GatewayProcess(
        classifier_service.address, [inpainter_service.address], IC_GALLERY_DIR=str(images_dir)
    ) as gateway:
        for page in open_page(browser, gateway.url + "/"):
            choose_gallery_photo(page, "soccer", "Soccer")
            page.wait_for_function(
                "() => document.querySelector('.explain-status').textContent"
                ".includes('Explain is unavailable')",
                timeout=10_000,
            )
            assert page.is_disabled("#explain-run")
            assert "explainer" in page.inner_text(".explain-status")
            assert "explainer" in page.get_attribute("#explain-run", "title")
            # Everything else works: another photo is classified.
            choose_gallery_photo(page, "lighthouse", "Lighthouse")
            assert page.is_disabled("#explain-run")
