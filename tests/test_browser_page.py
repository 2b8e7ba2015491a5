"""The web page in headless Chromium against the real gateway and services.

A person's path through the page: choose the soccer photo, brush over the
ball, see "soccer ball" drop, undo and redo, show a class activation map on
both images, upload a photo of their own, and get a plain-words error for a
file that is not an image. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.support.browser_page import (
    BALL_CENTRE,
    BUSY_DONE,
    RECORD_FORMS,
    SOCCER_BALL,
    WORKING_SIZE,
    choose_gallery_photo,
    drag,
    open_page,
    screenshot,
    sent_forms,
    set_brush_size,
    table_probabilities,
    wait_for_classified,
    wait_for_edits,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(browser, page_url):
    yield from open_page(browser, page_url)


def test_brushing_the_ball_lowers_soccer_ball_and_undo_restores_it(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    original = table_probabilities(page, "original-table")
    assert max(original, key=original.get) == SOCCER_BALL
    assert table_probabilities(page, "modified-table") == original

    set_brush_size(page, 22)
    left, right = BALL_CENTRE[0] - 14, BALL_CENTRE[0] + 14
    page.evaluate(RECORD_FORMS)
    drag(page, [(left, BALL_CENTRE[1] - 4), (right, BALL_CENTRE[1] - 4)])
    # A second stroke at once, while the first edit is still in flight: it waits its turn.
    drag(page, [(left, BALL_CENTRE[1] + 6), (right, BALL_CENTRE[1] + 6)])
    wait_for_edits(page, 2)
    screenshot(page, "01-soccer-ball-removed")

    # What was sent: the working copy and a same-size mask, non-zero on the ball only.
    edits = sent_forms(page, "/api/v1/edit")
    assert len(edits) == 2
    parts = edits[0]
    image = Image.open(io.BytesIO(parts["image"]))
    mask = np.asarray(Image.open(io.BytesIO(parts["mask"])).convert("RGBA"))
    assert image.size == (WORKING_SIZE, WORKING_SIZE)
    assert mask.shape[:2] == (WORKING_SIZE, WORKING_SIZE)
    painted = mask.max(axis=2) > 0
    assert painted[BALL_CENTRE[1] - 4, BALL_CENTRE[0]]
    assert not painted[40, 200] and not painted[200, 40]
    assert parts["classes"].split(",")[0] == str(SOCCER_BALL)
    # The second stroke was applied to the result of the first.
    assert edits[1]["image"] != parts["image"]

    edited = table_probabilities(page, "modified-table")
    assert set(edited) == set(original), "the modified table follows the original's top 5"
    assert edited[SOCCER_BALL] < original[SOCCER_BALL] - 0.05
    change = page.text_content(f'#modified-table tr[data-class-id="{SOCCER_BALL}"] .change')
    assert change.startswith("▼")

    page.keyboard.press("Control+z")
    wait_for_edits(page, 1)
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
    )
    assert table_probabilities(page, "modified-table") == original
    assert page.is_disabled("#undo-button")

    page.keyboard.press("Control+y")
    wait_for_edits(page, 1)
    page.keyboard.press("Control+Shift+z")
    wait_for_edits(page, 2)
    assert table_probabilities(page, "modified-table") == edited

    # The other view of the table: the modified image's own top 5.
    page.click('[data-table-mode="own"]')
    own = table_probabilities(page, "modified-table")
    assert list(own.values()) == sorted(own.values(), reverse=True)
    screenshot(page, "02-new-top5")

    page.click("#reset-button")
    page.wait_for_function(
        "document.querySelector('#modified-caption').textContent.includes('reset')"
    )
    page.click('[data-table-mode="pinned"]')
    assert table_probabilities(page, "modified-table") == original


CAM_STATS = """id => {
  const c = document.getElementById(id);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let opaque = 0, min = 255, max = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    opaque++;
    const luma = 0.3 * data[i] + 0.59 * data[i + 1] + 0.11 * data[i + 2];
    min = Math.min(min, luma); max = Math.max(max, luma);
  }
  return {opaque, spread: max - min, pixels: c.width * c.height};
}"""


def test_selecting_a_row_shows_its_cam_on_both_images(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    for canvas in ("original-cam", "modified-cam"):
        assert page.evaluate(CAM_STATS, canvas)["opaque"] == 0, "no map before a row is chosen"

    set_brush_size(page, 22)
    drag(page, [(BALL_CENTRE[0] - 12, BALL_CENTRE[1]), (BALL_CENTRE[0] + 12, BALL_CENTRE[1])])
    wait_for_edits(page, 1)

    page.click(f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
    page.wait_for_function("document.querySelector('#cam-status').textContent.includes('soccer')")
    page.wait_for_function(BUSY_DONE)
    for canvas in ("original-cam", "modified-cam"):
        stats = page.evaluate(CAM_STATS, canvas)
        # Zero evidence is transparent; the soccer ball's evidence covers most of the photo.
        assert stats["opaque"] > stats["pixels"] / 2, f"{canvas} is hardly drawn"
        assert stats["spread"] > 100, f"{canvas} is flat: not a map"
    # The legend gives the scale in numbers: 0 to the original's peak.
    assert page.text_content("#legend-low") == "0"
    assert float(page.text_content("#legend-high").split()[0]) > 0
    for table in ("original-table", "modified-table"):
        selected = page.get_attribute(
            f'#{table} tr[data-class-id="{SOCCER_BALL}"]', "aria-selected"
        )
        assert selected == "true"
    # The maps differ: the ball is gone on one of them.
    differs = page.evaluate(
        """() => {
          const px = id => { const c = document.getElementById(id);
            return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
          const a = px('original-cam'), b = px('modified-cam');
          let diff = 0; for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
          return diff;
        }"""
    )
    assert differs > 0
    page.fill("#cam-opacity", "85")
    page.dispatch_event("#cam-opacity", "input")
    assert (
        page.evaluate("getComputedStyle(document.getElementById('modified-cam')).opacity") == "0.85"
    )
    screenshot(page, "03-cam-both-images")

    page.click(f'#original-table tr[data-class-id="{SOCCER_BALL}"]')  # again: hides the map
    page.wait_for_function("document.querySelector('#cam-status').textContent.startsWith('Click')")
    assert page.evaluate(CAM_STATS, "original-cam")["opaque"] == 0


def test_uploaded_png_keeps_its_whole_picture_and_gets_a_thumbnail(page, tmp_path, photo_rgb):
    # A wide PNG: the working copy keeps the whole picture, its longer side the working size.
    wide = Image.fromarray(photo_rgb("lighthouse")).resize((340, 227))
    path = tmp_path / "my-lighthouse.png"
    wide.save(path)
    page.set_input_files("#upload-input", str(path))
    wait_for_classified(page, "my-lighthouse.png")
    top = page.get_attribute("#original-table tbody tr[data-class-id]", "data-class-id")
    labels = json.loads(urllib.request.urlopen(page.url + "api/v1/labels").read())["labels"]
    assert labels[int(top)].startswith("beacon")
    size = page.evaluate(
        "[document.getElementById('original-canvas').width, "
        "document.getElementById('original-canvas').height]"
    )
    assert size == [WORKING_SIZE, round(227 * WORKING_SIZE / 340)]
    assert page.is_hidden("#error-banner")
    thumb = page.locator(".thumb.uploaded")
    assert thumb.get_attribute("aria-pressed") == "true"
    assert "my-lighthouse.png" in thumb.inner_text()
    screenshot(page, "04-uploaded-png")


def test_a_file_that_is_not_an_image_gets_a_plain_error(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    page.set_input_files(
        "#upload-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}],
    )
    page.wait_for_selector("#error-banner:not([hidden])", timeout=20_000)
    message = page.text_content("#error-text")
    assert "notes.txt" in message
    assert "PNG, JPEG or WebP" in message  # the API's own words
    # Nothing changed: the soccer photo is still the one being edited.
    assert "Soccer" in page.text_content("#original-caption")
    screenshot(page, "05-error-not-an-image")
    page.click("#error-banner .dismiss")
    assert page.is_hidden("#error-banner")


def test_backends_shortcuts_and_tutorial(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    info = json.loads(urllib.request.urlopen(page.url + "api/v1/info").read())
    options = page.eval_on_selector_all(
        "#backend-select option", "os => os.map(o => [o.value, o.disabled, o.selected])"
    )
    assert [name for name, _, _ in options] == [b["name"] for b in info["backends"]]
    default = next(b["name"] for b in info["backends"] if b["default"])
    assert page.input_value("#backend-select") == default
    assert all(
        disabled == (not b["available"])
        for (_, disabled, _), b in zip(options, info["backends"], strict=True)
    )

    # The chosen backend's description is on the page, not only in a tooltip.
    described = next(b["description"] for b in info["backends"] if b["name"] == default)
    assert page.text_content("#backend-description") == described
    # Gallery thumbnails carry their names.
    assert "Soccer" in page.inner_text('.thumb[data-image-id="soccer"]')

    page.select_option("#backend-select", "navier-stokes")
    drag(page, [(BALL_CENTRE[0] - 10, BALL_CENTRE[1]), (BALL_CENTRE[0] + 10, BALL_CENTRE[1])])
    wait_for_edits(page, 1)
    assert "navier-stokes" in page.text_content("#modified-caption")

    # Holding C shows the original in place of the modified image.
    same_pixels = """() => {
      const px = id => { const c = document.getElementById(id);
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
      const a = px('original-canvas'), b = px('modified-canvas');
      return a.every((v, i) => v === b[i]);
    }"""
    assert not page.evaluate(same_pixels)
    page.keyboard.down("c")
    assert page.evaluate(same_pixels)
    assert page.is_visible(".stage.comparing")
    page.keyboard.up("c")
    assert not page.evaluate(same_pixels)

    before = int(page.input_value("#brush-size"))
    page.keyboard.press("]")
    page.keyboard.press("]")
    assert int(page.input_value("#brush-size")) > before
    page.keyboard.press("[")
    page.keyboard.press("[")
    page.keyboard.press("[")
    assert int(page.input_value("#brush-size")) < before

    page.click("#help-button")
    page.wait_for_selector("#tutorial[open]")
    assert "Step 1 of" in page.text_content("#tutorial .step-counter")
    page.click('#tutorial [data-action="next"]')
    assert "Step 2 of" in page.text_content("#tutorial .step-counter")
    assert "brush" in page.inner_text("#tutorial .step:not([hidden])").lower()
    screenshot(page, "06-tutorial", full_page=False)
    page.keyboard.press("Escape")
    page.wait_for_selector("#tutorial:not([open])", state="attached")


def test_a_larger_working_size_is_what_is_sent(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    brush_before = int(page.input_value("#brush-size"))
    page.select_option("#size-select", "512")
    wait_for_classified(page, "512×512")
    sizes = page.evaluate(
        "['original-canvas', 'modified-canvas', 'paint-canvas']"
        ".map(id => [document.getElementById(id).width, document.getElementById(id).height])"
    )
    assert sizes == [[512, 512]] * 3
    # The brush keeps covering the same part of the picture.
    assert int(page.input_value("#brush-size")) == round(brush_before * 512 / WORKING_SIZE)
    page.evaluate(RECORD_FORMS)
    box = page.locator("#paint-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.63)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.22, box["y"] + box["height"] * 0.63, steps=4)
    page.mouse.up()
    wait_for_edits(page, 1)
    (sent,) = sent_forms(page, "/api/v1/edit")
    assert Image.open(io.BytesIO(sent["image"])).size == (512, 512)
    assert Image.open(io.BytesIO(sent["mask"])).size == (512, 512)
    modified = page.evaluate("document.getElementById('modified-canvas').width")
    assert modified == 512


def test_other_modules_can_push_an_image_as_an_undoable_edit(page):
    """The hook js/explain.js uses: applyInpaintedImage() adds an ordinary history entry."""
    choose_gallery_photo(page, "soccer", "Soccer")
    depth = page.evaluate(
        """async () => {
          const { app } = await import('./js/app.js');
          await app.ready;
          // A grey square over the ball, drawn on the current image.
          const canvas = document.createElement('canvas');
          canvas.width = canvas.height = app.size;
          const ctx = canvas.getContext('2d');
          ctx.drawImage(app.currentCanvas(), 0, 0);
          ctx.fillStyle = '#6a8f4a';
          ctx.fillRect(28, 132, 24, 24);
          const blob = await new Promise(r => canvas.toBlob(r, 'image/png'));
          const original = app.originalEntry();
          await app.applyInpaintedImage(blob, { note: 'fix-it', backend: 'telea' });
          // CAMs decode in the background; wait for the original's.
          for (const r of original.results.values()) await Promise.all(r.camRequests.values());
          return { depth: app.history.depth, top: original.top.length, known: original.probs.size,
                   cams: original.cams.size, pushedTop: app.history.current.top.length };
        }"""
    )
    # Entries offer their top 5 (the original's with their CAMs, from one request).
    assert depth == {"depth": 1, "top": 5, "known": 5, "cams": 5, "pushedTop": 5}
    wait_for_edits(page, 1)
    assert "fix-it" in page.text_content("#modified-caption")
    page.keyboard.press("Control+z")
    page.wait_for_function(
        "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
    )


def test_following_another_class_adds_it_to_every_edit(page):
    choose_gallery_photo(page, "soccer", "Soccer")
    page.wait_for_selector("#track-input:not([disabled])")
    page.fill("#track-input", "golf ball")
    page.click('#track-form button[type="submit"]')
    golf_ball = page.locator('#modified-table tr[data-class-id="574"]')
    golf_ball.wait_for()
    assert "followed" in golf_ball.text_content()
    assert golf_ball.get_attribute("aria-selected") == "true"
    page.evaluate(RECORD_FORMS)
    drag(page, [(BALL_CENTRE[0] - 10, BALL_CENTRE[1]), (BALL_CENTRE[0] + 10, BALL_CENTRE[1])])
    wait_for_edits(page, 1)
    (sent,) = sent_forms(page, "/api/v1/edit")
    assert "574" in sent["classes"].split(",")
    probability = float(golf_ball.get_attribute("data-probability"))
    assert 0 <= probability < 1
    assert golf_ball.locator(".change").text_content() != "–"

    page.fill("#track-input", "no such thing at all")
    page.click('#track-form button[type="submit"]')
    page.wait_for_selector("#error-banner:not([hidden])")
    assert "no such thing at all" in page.text_content("#error-text")

    page.click("#track-clear")
    page.wait_for_selector('#modified-table tr[data-class-id="574"]', state="detached")
