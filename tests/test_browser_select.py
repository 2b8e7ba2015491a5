"""The select tool and region answers, in headless Chromium on the real system:
one click on the soccer ball proposes the ball (outlined on the modified image),
Grow makes it larger, Accept removes it as one edit that undo takes back; the
same from the keyboard; bad prompts show the API's message and change nothing;
and every edit asks for `answer=region`, the page's picture then being the
one a whole-picture answer gives."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.support.browser_page import (
    BALL_CENTRE,
    BUSY_DONE,
    RECORD_FORMS,
    WORKING_SIZE,
    accessibility_violations,
    brush_over_the_ball,
    choose_gallery_photo,
    page_at,
    screenshot,
    sent_forms,
    wait_for_edits,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROPOSED = f"!document.getElementById('select-accept').disabled && {BUSY_DONE}"
# The tint and ants of the select layer are opaque only where the region is.
PROPOSAL_MASK = """() => {
  const c = document.getElementById('select-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const out = [];
  for (let i = 3; i < d.length; i += 4) out.push(d[i] > 0 ? 1 : 0);
  return out;
}"""
CANVAS_PNG = "id => document.getElementById(id).toDataURL('image/png').split(',')[1]"
EDITED = "(n) => document.querySelector('#modified-caption').textContent.startsWith(n + ' edit')"


def ball_disk() -> np.ndarray:
    """The ball as soccer.jpg shows it at 227 px: about 10 px across, its shadowed
    lower rim included, centred half a pixel right of BALL_CENTRE (78 pixels)."""
    rows, cols = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE]
    return (cols - BALL_CENTRE[0] - 0.5) ** 2 + (rows - BALL_CENTRE[1]) ** 2 <= 5**2


def proposal(page) -> np.ndarray:
    return np.array(page.evaluate(PROPOSAL_MASK), bool).reshape(WORKING_SIZE, WORKING_SIZE)


def canvas_rgb(page, canvas_id: str) -> np.ndarray:
    png = base64.b64decode(page.evaluate(CANVAS_PNG, canvas_id))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def mask_of(png: bytes) -> np.ndarray:
    """A mask PNG as the API reads it: removed where any channel or alpha is non-zero."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).max(axis=2) > 0


def click_image(page, x: float, y: float) -> None:
    """A click at (x, y) in pixels of the 227 px working copy."""
    box = page.locator("#paint-canvas").bounding_box()
    scale = box["width"] / WORKING_SIZE
    page.mouse.click(box["x"] + x * scale, box["y"] + y * scale)


def drag_image(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    box = page.locator("#paint-canvas").bounding_box()
    scale = box["width"] / WORKING_SIZE
    page.mouse.move(box["x"] + start[0] * scale, box["y"] + start[1] * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * scale, box["y"] + end[1] * scale, steps=6)
    page.mouse.up()


def error_text(page) -> str:
    page.wait_for_selector("#error-banner:not([hidden])")
    return page.text_content("#error-text")


def rgb_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def whole_picture(gateway, form: dict) -> np.ndarray:
    """The edit the page sent, asked again of the gateway for the whole picture."""
    assert form["answer"] == "region"
    files = {"image": ("image.png", form["image"]), "mask": ("mask.png", form["mask"])}
    fields = {k: v for k, v in form.items() if k not in ("image", "mask", "answer")}
    reply = gateway.post("/api/v1/edit", files=files, data=fields)
    assert reply.status_code == 200, reply.text
    return rgb_of(base64.b64decode(reply.json()["image"]))


def assert_same_picture(page_pixels: np.ndarray, whole: np.ndarray, before: np.ndarray) -> None:
    """The page's copy with the region pasted in is the whole answer's picture."""
    assert page_pixels.shape == whole.shape
    assert np.abs(page_pixels - whole).max() <= 1, "the pasted region differs from the whole answer"
    assert np.abs(page_pixels - before).max() > 30, "the edit changed nothing the test can see"


def test_one_click_proposes_the_ball_grow_accept_and_undo(browser, page_url, gateway_service):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        original = canvas_rgb(page, "modified-canvas")
        page.click("#tool-select")
        assert page.get_attribute("#tool-select", "aria-checked") == "true"
        assert page.is_visible("#select-accept") and not page.is_visible("#brush-size")

        click_image(page, BALL_CENTRE[0] + 0.5, BALL_CENTRE[1] + 0.5)
        page.wait_for_function(PROPOSED)
        (asked,) = sent_forms(page, "/api/v1/segment")
        assert (asked["x"], asked["y"]) == (str(BALL_CENTRE[0]), str(BALL_CENTRE[1]))
        region, ball = proposal(page), ball_disk()
        assert (region & ball).sum() >= 0.7 * ball.sum(), "most of the ball is proposed"
        assert (region & ~ball).sum() <= 0.3 * region.sum(), "little grass is proposed"
        assert page.text_content("#select-status").startswith(f"Proposed: {region.sum()} px")
        screenshot(page, "select-proposal", full_page=False)
        assert accessibility_violations(page) == []

        page.click("#select-grow")
        page.wait_for_function(
            f"document.getElementById('select-status').textContent.includes('grown') && {PROPOSED}"
        )
        grown = proposal(page)
        assert grown.sum() > region.sum() + 20 and (grown & region).sum() >= 0.95 * region.sum()
        assert int(sent_forms(page, "/api/v1/segment")[-1]["grow"]) > 0
        assert sent_forms(page, "/api/v1/edit") == [], "nothing is removed before Accept"

        page.click("#select-accept")
        wait_for_edits(page, 1)
        assert "selected object" in page.text_content("#modified-caption")
        assert page.is_disabled("#select-accept") and not proposal(page).any()
        (edit,) = sent_forms(page, "/api/v1/edit")
        assert np.array_equal(mask_of(edit["mask"]), grown), "the region removed is the one shown"
        whole = whole_picture(gateway_service, edit)
        assert_same_picture(canvas_rgb(page, "modified-canvas"), whole, original)

        page.click("#undo-button")
        page.wait_for_function(
            "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
        )
        assert np.array_equal(canvas_rgb(page, "modified-canvas"), original)
        page.click("#redo-button")
        page.wait_for_function(EDITED, arg=1)


def test_select_from_the_keyboard(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        page.keyboard.press("s")
        assert page.get_attribute("#tool-select", "aria-checked") == "true"
        page.focus("#paint-canvas")
        assert page.is_visible("#select-cursor")
        # From the centre (113, 113) by 4 px steps (Shift: 16) to (41, 145), on the ball.
        for key in ["Shift+ArrowLeft"] * 4 + ["ArrowLeft"] * 2 + ["Shift+ArrowDown"] * 2:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(PROPOSED)
        (asked,) = sent_forms(page, "/api/v1/segment")
        assert (asked["x"], asked["y"]) == ("41", "145")
        first = proposal(page)
        assert (first & ball_disk()).sum() >= 0.7 * ball_disk().sum()

        page.keyboard.press("+")
        page.wait_for_function(
            f"document.getElementById('select-status').textContent.includes('grown') && {PROPOSED}"
        )
        assert proposal(page).sum() > first.sum()
        page.keyboard.press("-")
        page.wait_for_function(
            f"!document.getElementById('select-status').textContent.includes('grown') && {PROPOSED}"
        )
        page.keyboard.press("Escape")
        assert page.is_disabled("#select-accept") and not proposal(page).any()

        page.keyboard.press("Enter")  # select again at the cross
        page.wait_for_function(PROPOSED)
        page.keyboard.press("Enter")  # accept
        wait_for_edits(page, 1)
        assert len(sent_forms(page, "/api/v1/edit")) == 1
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
        )
        page.keyboard.press("b")
        assert page.get_attribute("#tool-brush", "aria-checked") == "true"
        assert not page.is_visible("#select-cursor")


def test_bad_prompts_show_the_message_and_change_nothing(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        page.click("#tool-select")
        # A box round the ball is GrabCut's own question: the ball again.
        drag_image(
            page,
            (BALL_CENTRE[0] - 9, BALL_CENTRE[1] - 9),
            (BALL_CENTRE[0] + 10, BALL_CENTRE[1] + 10),
        )
        page.wait_for_function(PROPOSED)
        (asked,) = sent_forms(page, "/api/v1/segment")
        assert asked["box"] == f"{BALL_CENTRE[0] - 9},{BALL_CENTRE[1] - 9},19,19"
        shown = proposal(page)
        assert (shown & ball_disk()).sum() >= 0.7 * ball_disk().sum()
        assert (shown & ~ball_disk()).sum() <= 0.3 * shown.sum()

        # A box of no area (a drag along one row): the server's 400, in its words.
        drag_image(page, (20.5, 60.5), (90.5, 60.5))
        assert "has no area" in error_text(page)
        assert sent_forms(page, "/api/v1/segment")[-1]["box"].endswith(",0")
        page.wait_for_function(BUSY_DONE)
        assert np.array_equal(proposal(page), shown), "the proposal stays as it was"
        assert not page.is_disabled("#select-accept")

        # A click that lands beyond the image's edge (the mouse, id 1) is not even sent.
        page.click("#error-banner .dismiss")
        asked = len(sent_forms(page, "/api/v1/segment"))
        page.eval_on_selector(
            "#paint-canvas",
            """c => { const r = c.getBoundingClientRect();
              const at = { clientX: r.right + 6, clientY: r.top + 10, pointerId: 1,
                           button: 0, pointerType: 'mouse', bubbles: true };
              c.dispatchEvent(new PointerEvent('pointerdown', at));
              c.dispatchEvent(new PointerEvent('pointerup', at)); }""",
        )
        assert f"outside the {WORKING_SIZE}x{WORKING_SIZE} image" in error_text(page)
        assert len(sent_forms(page, "/api/v1/segment")) == asked
        assert np.array_equal(proposal(page), shown)
        assert sent_forms(page, "/api/v1/edit") == []
        assert page.text_content("#modified-caption").startswith("Brush")


def test_brush_edits_answer_with_the_region_only(browser, page_url, gateway_service):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        brush_over_the_ball(page, strokes=2)
        forms = sent_forms(page, "/api/v1/edit")
        assert len(forms) == 2 and all(form["answer"] == "region" for form in forms)
        # The second stroke was sent on the page's picture after the first one.
        first, second = (rgb_of(form["image"]) for form in forms)
        assert_same_picture(second, whole_picture(gateway_service, forms[0]), first)
        assert_same_picture(
            canvas_rgb(page, "modified-canvas"), whole_picture(gateway_service, forms[1]), second
        )
