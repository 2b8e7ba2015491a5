"""The page when things go wrong, and on a phone: a backend dying (fallback
notice, menu refreshed), the classifier dying (the edit's error shown in the
API's words, nothing changed), a finger stroke on a phone-sized screen."""

from __future__ import annotations

import pytest

from tests.conftest import classifier_process
from tests.gateway_fixtures import GatewayProcess, wait_until
from tests.support.browser_page import (
    BALL_CENTRE,
    BUSY_DONE,
    WORKING_SIZE,
    choose_gallery_photo,
    drag,
    page_at,
    screenshot,
    table_probabilities,
    wait_for_edits,
)
from tests.support.processes import ServiceProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_unavailable_backend_falls_back_with_a_notice(
    browser, classifier_service, inpainter_service, images_dir
):
    # A patchmatch service of this test's own, so killing it harms no other test.
    with (
        ServiceProcess(
            "services.patchmatch", health_service="ic.v1.Inpainter", name="patchmatch_browser"
        ) as patchmatch,
        GatewayProcess(
            classifier_service.address,
            [inpainter_service.address, patchmatch.address],
            IC_GALLERY_DIR=str(images_dir),
        ) as gateway,
        page_at(browser, gateway.url + "/") as page,
    ):
        choose_gallery_photo(page, "soccer", "Soccer")
        page.select_option("#backend-select", "patchmatch")

        patchmatch.kill()
        wait_until(
            lambda: (
                not any(
                    b["available"]
                    for b in gateway.get("/api/v1/info").json()["backends"]
                    if b["name"] == "patchmatch"
                )
            ),
            what="the gateway to notice patchmatch is down",
        )
        drag(page, [(BALL_CENTRE[0] - 10, BALL_CENTRE[1]), (BALL_CENTRE[0] + 10, BALL_CENTRE[1])])
        wait_for_edits(page, 1)
        notice = page.text_content("#notice-text")
        assert "patchmatch" in notice and "telea" in notice
        assert page.is_visible("#notice-banner")
        # The menu now tells the truth: patchmatch disabled, the default chosen.
        page.wait_for_selector(
            '#backend-select option[value="patchmatch"]:disabled', state="attached"
        )
        assert page.input_value("#backend-select") == "telea"
        screenshot(page, "07-fallback-notice")

        # A fresh page lists the dead backend, disabled.
        page.reload()
        page.wait_for_selector('#backend-select option[value="patchmatch"]', state="attached")
        assert page.is_disabled('#backend-select option[value="patchmatch"]')
        assert page.input_value("#backend-select") == "telea"


def test_touch_stroke_on_a_phone_sized_screen(browser, page_url):
    with page_at(
        browser, page_url, viewport={"width": 390, "height": 800}, has_touch=True, is_mobile=True
    ) as page:
        finger_stroke_over_the_ball(page)


def finger_stroke_over_the_ball(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    # Nothing but the (scrolling) gallery is wider than the screen.
    too_wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(e => !e.closest('#gallery') && e.getBoundingClientRect().right > innerWidth + 1)
             .map(e => e.tagName + '#' + e.id + '.' + e.className)"""
    )
    assert not too_wide
    page.locator("#paint-canvas").scroll_into_view_if_needed()
    box = page.locator("#paint-canvas").bounding_box()
    scale = box["width"] / WORKING_SIZE
    x0, y = box["x"] + (BALL_CENTRE[0] - 12) * scale, box["y"] + BALL_CENTRE[1] * scale
    # A finger drag, as the touch screen sends it (pointer events of type "touch").
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y}]})
    for step in range(1, 7):
        point = {"x": x0 + step * 4 * scale, "y": y}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_edits(page, 1)
    screenshot(page, "08-phone-after-touch-stroke")


def test_a_failed_edit_is_reported_and_changes_nothing(
    browser, model_path, inpainter_service, images_dir
):
    # A classifier of this test's own, stopped mid-session as if it crashed.
    with (
        classifier_process(model_path) as classifier,
        GatewayProcess(
            classifier.address, [inpainter_service.address], IC_GALLERY_DIR=str(images_dir)
        ) as gateway,
        page_at(browser, gateway.url + "/") as page,
    ):
        choose_gallery_photo(page, "soccer", "Soccer")
        before = table_probabilities(page, "modified-table")
        # The page fetches the top-5 CAMs in the background after a photo is chosen;
        # let those finish, so the failure seen is the edit's and not theirs.
        page.wait_for_load_state("networkidle")

        classifier.kill()
        drag(page, [(BALL_CENTRE[0] - 10, BALL_CENTRE[1]), (BALL_CENTRE[0] + 10, BALL_CENTRE[1])])
        page.wait_for_selector("#error-banner:not([hidden])", timeout=30_000)
        message = page.text_content("#error-text")
        assert message.startswith("The edit failed: ")
        assert "classifier" in message.lower()
        page.wait_for_function(BUSY_DONE)
        # No new history entry, no leftover paint of the failed stroke.
        assert page.text_content("#modified-caption").startswith("Brush")
        assert table_probabilities(page, "modified-table") == before
        assert page.is_disabled("#undo-button")
        paint = page.evaluate(
            """() => { const c = document.getElementById('paint-canvas');
                 return c.getContext('2d').getImageData(0, 0, c.width, c.height).data
                   .some((v, i) => i % 4 === 3 && v > 0); }"""
        )
        assert not paint
        screenshot(page, "09-edit-failed")
