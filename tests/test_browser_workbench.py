"""The workbench as a person meets it, in headless Chromium on the real system:
one screen while brushing (1280x720, 1440x900, a phone), wide screens used,
the modified CAM dimmer once the ball is gone, maps on one scale with numbers,
sessions exported and opened again (and broken ones refused), the keyboard
alone, a non-square photo all the way, the working size change that asks,
and axe-core finding no serious or critical accessibility violations."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from tests.support.browser_page import (
    BALL_CENTRE,
    BUSY_DONE,
    RECORD_FORMS,
    SOCCER_BALL,
    WORKING_SIZE,
    accessibility_violations,
    box_in_viewport,
    brush_over_the_ball,
    choose_gallery_photo,
    page_at,
    screenshot,
    sent_forms,
    table_probabilities,
    wait_for_classified,
    wait_for_edits,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GOLF_BALL = 574
PHONE = {"width": 390, "height": 844}
SAME_PIXELS = """() => {
  const px = id => { const c = document.getElementById(id);
    return c.getContext('2d').getImageData(0, 0, c.width, c.height).data; };
  const a = px('original-canvas'), b = px('modified-canvas');
  return a.length === b.length && a.every((v, i) => v === b[i]);
}"""
# Opacity of a map overlay summed inside a circle around the ball, and over the whole map.
MAP_WEIGHT = """([id, cx, cy, r]) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let near = 0, all = 0;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const a = d[(y * c.width + x) * 4 + 3];
    all += a;
    if (Math.hypot(x - cx, y - cy) < r) near += a;
  }
  return {near, all};
}"""


def phone_options() -> dict:
    return {"viewport": PHONE, "has_touch": True, "is_mobile": True}


def show_class_map(page, class_id: int) -> None:
    page.click(f'#modified-table tr[data-class-id="{class_id}"]')
    page.wait_for_function(
        f"!document.getElementById('map-legend').hidden && {BUSY_DONE}"
        " && document.querySelector('#cam-status').textContent.includes('class')"
    )


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 720}, {"width": 1440, "height": 900}, PHONE],
    ids=lambda v: f"{v['width']}x{v['height']}",
)
def test_images_changed_row_and_legend_share_one_screen(browser, page_url, viewport):
    phone = viewport == PHONE
    options = phone_options() if phone else {"viewport": viewport}
    with page_at(browser, page_url, **options) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        if phone:
            # On a phone the person scrolls to the image once; after that nothing moves.
            page.evaluate(
                "document.getElementById('modified-panel').scrollIntoView({block: 'start'})"
            )
        scroll = page.evaluate("scrollY")
        brush_over_the_ball(page)
        show_class_map(page, SOCCER_BALL)
        assert page.evaluate("scrollY") == scroll, "the answer must come to the person, not below"
        if not phone:
            assert scroll == 0
        for selector in ("#original-canvas", "#modified-canvas", "#map-legend"):
            box_in_viewport(page, selector)
        row = f'#modified-table tr[data-class-id="{SOCCER_BALL}"]'
        box_in_viewport(page, row)
        assert page.text_content(f"{row} .change").startswith("▼")
        undo = box_in_viewport(page, "#undo-button")
        image = page.locator("#modified-canvas").bounding_box()
        assert undo["y"] - (image["y"] + image["height"]) < 120, "undo sits next to the image"
        screenshot(page, f"workbench-{viewport['width']}x{viewport['height']}", full_page=False)


def test_wide_screens_use_their_width(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1920, "height": 1080}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        image = page.locator("#modified-canvas").bounding_box()
        table = page.locator("#modified-table").bounding_box()
        assert image["width"] > 600, image
        assert table["x"] > image["x"] + image["width"], "the tables sit beside the images"
        box_in_viewport(page, "#modified-canvas")


def test_on_a_phone_hold_compares_in_place_and_no_key_hints(browser, page_url):
    with page_at(browser, page_url, **phone_options()) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate("document.getElementById('modified-panel').scrollIntoView({block: 'start'})")
        brush_over_the_ball(page, strokes=1)
        assert not page.evaluate(SAME_PIXELS)
        hold = page.locator("#hold-compare").bounding_box()
        point = {"x": hold["x"] + hold["width"] / 2, "y": hold["y"] + hold["height"] / 2}
        cdp = page.context.new_cdp_session(page)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
        page.wait_for_function(SAME_PIXELS)
        assert page.is_visible(".stage.comparing")
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_function(f"!({SAME_PIXELS})()")
        # No keyboard on this device: no key hints.
        assert not page.is_visible("#brush-hint")
        assert not page.is_visible(".footer .key-hint")


def test_the_modified_map_dims_when_the_ball_is_removed(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page)
        show_class_map(page, SOCCER_BALL)
        args = [BALL_CENTRE[0], BALL_CENTRE[1], 20]
        before = page.evaluate(MAP_WEIGHT, ["original-cam", *args])
        after = page.evaluate(MAP_WEIGHT, ["modified-cam", *args])
        # One scale for both maps: where the ball was, the map is much fainter.
        assert after["near"] < 0.6 * before["near"], (before, after)
        assert after["all"] < before["all"]
        # The legend says what the numbers are, and they fall too.
        assert "original's peak" in page.text_content("#legend-high")
        text = page.text_content("#legend-text")
        original, modified = (
            float(x)
            for x in re.search(r"([\d.]+) in the original, ([\d.]+) in the modified", text).groups()
        )
        assert modified < original
        assert "score units" in text


def modified_state(page) -> dict:
    return {
        "caption": page.text_content("#modified-caption").split(" · ")[0],
        "modified": table_probabilities(page, "modified-table"),
        "original": table_probabilities(page, "original-table"),
        "pixels": page.evaluate(
            """() => { const c = document.getElementById('modified-canvas');
                 return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
                   .filter((_, i) => i % 97 === 0)); }"""
        ),
        "redo": page.is_enabled("#redo-button"),
        "selected": page.eval_on_selector_all(
            '#modified-table tr[aria-selected="true"]', "rows => rows.map(r => r.dataset.classId)"
        ),
    }


def export_session(page, tmp_path) -> bytes:
    with page.expect_download() as download:
        page.click("#session-export")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    return path.read_bytes()


def open_session(page, name: str, data: bytes) -> None:
    page.set_input_files(
        "#session-input", files=[{"name": name, "mimeType": "application/json", "buffer": data}]
    )


def test_export_then_open_gives_the_same_state_undo_included(browser, page_url, tmp_path):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page)
        two_edits = table_probabilities(page, "modified-table")
        page.click("#undo-button")
        wait_for_edits(page, 1)
        page.wait_for_selector("#track-input:not([disabled])")
        page.fill("#track-input", "golf ball")
        page.click('#track-form button[type="submit"]')
        page.locator(f'#modified-table tr[data-class-id="{GOLF_BALL}"]').wait_for()
        page.click(f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
        page.wait_for_function(BUSY_DONE)
        saved = modified_state(page)
        data = export_session(page, tmp_path)

        session = json.loads(data)
        assert session["format"] == "interactive-classification-session"
        assert session["version"] == 1
        assert [e["kind"] for e in session["entries"]] == ["original", "edit", "edit"]
        assert session["index"] == 1
        assert all(e["backend"] == "telea" and e["mask"] for e in session["entries"][1:])
        mask = Image.open(io.BytesIO(base64.b64decode(session["entries"][1]["mask"])))
        assert mask.size == (WORKING_SIZE, WORKING_SIZE)

        choose_gallery_photo(page, "hockey", "Hockey")
        open_session(page, "soccer-session.json", data)
        page.wait_for_function(
            "document.querySelector('#original-caption').textContent.includes('Soccer')"
        )
        page.wait_for_function(BUSY_DONE)
        assert modified_state(page) == saved
        assert "followed" in page.text_content(f'#modified-table tr[data-class-id="{GOLF_BALL}"]')
        assert page.is_hidden("#error-banner")

        page.click("#redo-button")
        wait_for_edits(page, 2)
        assert {
            k: v for k, v in table_probabilities(page, "modified-table").items() if k != GOLF_BALL
        } == two_edits
        page.click("#undo-button")
        page.click("#undo-button")
        page.wait_for_function(
            "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
        )


def tiny_png(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 60)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_a_broken_session_file_is_refused_and_changes_nothing(browser, page_url, tmp_path):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page, strokes=1)
        good = export_session(page, tmp_path)
        session = json.loads(good)
        info = json.loads(page.evaluate("fetch('api/v1/info').then(r => r.text())"))
        max_side = info["limits"]["max_side"]

        def variant(change) -> bytes:
            copy = json.loads(good)
            change(copy)
            return json.dumps(copy).encode()

        def too_large(s):
            s["photo"].update(width=max_side + 1, height=1)
            s["entries"] = [{**s["entries"][0], "image": tiny_png(max_side + 1, 1)}]
            s["index"] = 0

        broken = {
            "not JSON": (b"these are my notes", "not JSON"),
            "cut short": (good[: len(good) // 2], "cut short"),
            "another format": (
                json.dumps({"format": "photoshop", "version": 1}).encode(),
                "not a session",
            ),
            "newer version": (variant(lambda s: s.update(version=99)), "newer version"),
            "too large": (variant(too_large), "more than this server accepts"),
            "wrong image size": (
                variant(lambda s: s["photo"].update(height=session["photo"]["height"] - 10)),
                "not 227×217",
            ),
            "no position": (variant(lambda s: s.update(index=7)), "position in its history"),
        }
        before = modified_state(page)
        image_top = page.locator("#modified-canvas").bounding_box()["y"]
        for name, (data, reason) in broken.items():
            if page.is_visible("#error-banner"):
                page.click("#error-banner .dismiss")
            open_session(page, f"{name}.json", data)
            page.wait_for_selector("#error-banner:not([hidden])", timeout=20_000)
            message = page.text_content("#error-text")
            assert reason in message, (name, message)
            assert f"{name}.json" in message
            assert modified_state(page) == before, f"{name}: the state changed"
            # The error is laid over the page: it does not push the images down.
            assert page.locator("#modified-canvas").bounding_box()["y"] == image_top
        screenshot(page, "session-refused", full_page=False)


def test_the_keyboard_alone_brushes_and_undoes(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        page.focus("#paint-canvas")
        # From the centre (113, 113) to the ball: left, then down, painting on the way back.
        for _ in range(14):
            page.keyboard.press("ArrowLeft")
        for _ in range(6):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Space")
        wait_for_edits(page, 1)
        (sent,) = sent_forms(page, "/api/v1/edit")
        painted = Image.open(io.BytesIO(sent["mask"])).convert("RGBA")
        bbox = painted.getchannel("A").getbbox()
        assert bbox is not None and bbox[0] < 60 and bbox[1] > 100, bbox
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
        )
        # Every control is reachable: the table rows take the keyboard too.
        page.focus(f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
        page.keyboard.press("Enter")
        page.wait_for_function("!document.getElementById('map-legend').hidden")


def test_a_non_square_photo_all_the_way(browser, page_url, tmp_path, photo_rgb):
    wide = Image.fromarray(photo_rgb("soccer")).resize((340, 227))
    path = tmp_path / "wide-soccer.png"
    wide.save(path)
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        page.set_input_files("#upload-input", str(path))
        wait_for_classified(page, "wide-soccer.png")
        height = round(227 * WORKING_SIZE / 340)
        page.evaluate(RECORD_FORMS)
        box = page.locator("#paint-canvas").bounding_box()
        assert abs(box["width"] / box["height"] - 227 / height) < 0.02, "the stage keeps the shape"
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.6)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6, steps=4)
        page.mouse.up()
        wait_for_edits(page, 1)
        (sent,) = sent_forms(page, "/api/v1/edit")
        for part in ("image", "mask"):
            assert Image.open(io.BytesIO(sent[part])).size == (WORKING_SIZE, height), part
        top = next(iter(table_probabilities(page, "original-table")))
        show_class_map(page, top)
        sizes = page.evaluate(
            "['original-cam', 'modified-cam', 'modified-canvas']"
            ".map(id => [document.getElementById(id).width, document.getElementById(id).height])"
        )
        assert sizes == [[WORKING_SIZE, height]] * 3
        # An explanation of the non-square image, laid over it.
        page.click("#explain-run")
        page.wait_for_function(
            "document.querySelector('.explain-status').textContent.includes('windows of')",
            timeout=90_000,
        )
        drawn = page.evaluate(
            """() => { const c = document.getElementById('modified-cam');
                 return [c.width, c.height, c.getContext('2d').getImageData(0, 0, c.width, c.height)
                   .data.filter((v, i) => i % 4 === 3 && v > 0).length]; }"""
        )
        assert drawn[:2] == [WORKING_SIZE, height] and drawn[2] > 1000, drawn
        page.click("#undo-button")
        page.wait_for_function(
            "document.querySelector('#modified-caption').textContent.startsWith('Brush')"
        )


def test_a_square_crop_the_person_moves(browser, page_url, tmp_path):
    # A horizontal ramp: each column's red value says where it came from.
    ramp = Image.new("RGB", (340, 227))
    ramp.putdata([(round(x * 255 / 339), 80, 80) for _ in range(227) for x in range(340)])
    path = tmp_path / "ramp.png"
    ramp.save(path)
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.select_option("#framing-select", "square")  # a square photo: no crop to move
        wait_for_classified(page, "Soccer")
        assert page.is_hidden("#crop-dialog")
        page.set_input_files("#upload-input", str(path))
        page.wait_for_selector("#crop-dialog[open]")
        for _ in range(30):  # all the way to the right
            page.keyboard.press("Shift+ArrowRight")
        page.click('#crop-dialog [data-action="ok"]')
        wait_for_classified(page, "ramp.png")
        first_red = page.evaluate(
            "document.getElementById('original-canvas').getContext('2d').getImageData(0, 100, 1, 1).data[0]"
        )
        assert page.evaluate("document.getElementById('original-canvas').width") == WORKING_SIZE
        assert page.evaluate("document.getElementById('original-canvas').height") == WORKING_SIZE
        # The square's left edge is at x = 340 - 227 = 113 of the photo.
        assert abs(first_red - 113 * 255 / 339) < 6, first_red


def test_changing_the_working_size_asks_and_can_replay(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page, strokes=1)
        page.select_option("#size-select", "320")
        page.wait_for_selector("#confirm-dialog[open]")
        page.click('#confirm-dialog button[data-value="cancel"]')
        # The dialog's close event, which answers the question, comes in a task of its own.
        page.wait_for_function(
            f"document.getElementById('size-select').value === '{WORKING_SIZE}'", timeout=5_000
        )
        assert page.text_content("#modified-caption").startswith("1 edit")

        page.select_option("#size-select", "320")
        page.click('#confirm-dialog button[data-value="replay"]')
        page.wait_for_function(
            "document.querySelector('#original-caption').textContent.includes('320×320')"
        )
        wait_for_edits(page, 1)
        assert page.evaluate("document.getElementById('modified-canvas').width") == 320
        edited = table_probabilities(page, "modified-table")
        assert edited[SOCCER_BALL] < table_probabilities(page, "original-table")[SOCCER_BALL]


def test_one_request_per_photo_marks_per_stroke_and_follow_keeps_the_mode(browser, page_url):
    with page_at(browser, page_url, viewport={"width": 1280, "height": 720}) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        page.evaluate(RECORD_FORMS)
        choose_gallery_photo(page, "beach", "Beach")
        page.wait_for_load_state("networkidle")
        assert len(sent_forms(page, "/api/v1/classify")) == 1, "one classify request per photo"

        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page, strokes=3)
        durations = page.evaluate(
            "performance.getEntriesByName('stroke-to-table').map(e => e.duration)"
        )
        assert len(durations) == 3 and all(d > 0 for d in durations)

        page.click('[data-table-mode="own"]')
        page.wait_for_selector("#track-input:not([disabled])")
        page.fill("#track-input", "golf ball")
        page.click('#track-form button[type="submit"]')
        page.locator(f'#modified-table tr[data-class-id="{GOLF_BALL}"]').wait_for()
        assert page.get_attribute('[data-table-mode="own"]', "aria-checked") == "true"


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_no_serious_or_critical_accessibility_violations(browser, page_url, phone):
    options = phone_options() if phone else {"viewport": {"width": 1280, "height": 720}}
    with page_at(browser, page_url, **options) as page:
        choose_gallery_photo(page, "soccer", "Soccer")
        brush_over_the_ball(page, strokes=1)
        show_class_map(page, SOCCER_BALL)
        assert accessibility_violations(page) == []
        page.click("#help-button")
        page.wait_for_selector("#tutorial[open]")
        assert accessibility_violations(page) == []
        # The tutorial points at what it explains.
        page.click('#tutorial [data-action="next"]')
        assert page.get_attribute("#modified-stage", "class").count("tutorial-target") == 1
