"""The model picker and "Compare with" in headless Chromium, on a stack serving
both built-in models (plus a card that cannot be served and a model without
CAMs, through IC_EXTRA_MODELS): the tables follow the chosen model and edits
survive a change of model; a compare model answers in the same edit request,
its table and CAMs beside the first; an unavailable model is disabled with its
reason written out; a model without CAMs offers none; sessions keep the models."""

from __future__ import annotations

import json

import onnx
import pytest

from tests.conftest import system_with_models
from tests.support.browser_page import (
    BUSY_DONE,
    RECORD_FORMS,
    SOCCER_BALL,
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
from tests.support.served_models import (
    EFFICIENTNET,
    MLP_HEAD_INPUT,
    SQUEEZENET,
    mlp_head_classifier,
    write_card,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEW = {"viewport": {"width": 1280, "height": 720}}
BROKEN_REASON = "input.layout must be NCHW or NHWC (got 'NWHC')"
# Opaque pixels of a canvas (a map drawn over an image).
OPAQUE = """id => { const c = document.getElementById(id);
  return c.getContext('2d').getImageData(0, 0, c.width, c.height).data
    .filter((v, i) => i % 4 === 3 && v > 0).length; }"""


@pytest.fixture(scope="module")
def extra_cards(tmp_path_factory):
    """A card the classifier refuses (a misspelt layout) and a model without CAM structure."""
    directory = tmp_path_factory.mktemp("page-models")
    onnx.save(mlp_head_classifier(), str(directory / "mlp.onnx"))
    return [
        # A card with a bad field is listed by its name only (its title is not read).
        write_card(directory / "broken.json", input_fields={"layout": "NWHC"}),
        write_card(
            directory / "mlp.json",
            title="No CAMs (test)",
            labels=["one", "two", "three"],
            input=MLP_HEAD_INPUT,
        ),
    ]


@pytest.fixture(scope="module")
def gateway(model_path, extra_cards, images_dir):
    """Classifier (the built-in cards + the extra ones), inpainter, explainer and gateway."""
    with system_with_models(model_path, extra_cards, images_dir) as (gateway, _, _):
        yield gateway


@pytest.fixture
def page(browser, gateway):
    with page_at(browser, gateway.url + "/", **VIEW) as page:
        # Compare the model picker's menus only once the list has arrived.
        page.wait_for_selector(f'#model-select option[value="{EFFICIENTNET}"]', state="attached")
        choose_gallery_photo(page, "soccer", "Soccer")
        yield page


def choose_model(page, name: str) -> None:
    page.select_option("#model-select", name)
    page.wait_for_function(BUSY_DONE)
    wait_for_classified(page, "Soccer")


def changes(page, table: str) -> dict[int, str]:
    rows = page.eval_on_selector_all(
        f"#{table} tbody tr[data-class-id]",
        "rows => rows.map(r => [Number(r.dataset.classId), r.querySelector('.change').textContent])",
    )
    return dict(rows)


def test_the_tables_follow_the_chosen_model_and_edits_stay(page, gateway, photo_bytes):
    assert page.input_value("#model-select") == SQUEEZENET
    brush_over_the_ball(page, strokes=2)
    squeezenet = table_probabilities(page, "modified-table")
    page.evaluate(RECORD_FORMS)

    choose_model(page, EFFICIENTNET)
    page.wait_for_function(
        "document.querySelector('#modified-table tbody tr[data-class-id]') !== null"
    )
    # Nothing thrown away: still two edits, now seen by EfficientNet-Lite0; one
    # request for the original and one for the modified image, both naming it.
    assert page.text_content("#modified-caption").startswith("2 edits")
    classified = sent_forms(page, "/api/v1/classify")
    assert [form["model"] for form in classified] == [EFFICIENTNET] * 2
    assert not sent_forms(page, "/api/v1/edit")
    reply = gateway.post(
        "/api/v1/classify",
        files={"image": ("soccer.jpg", photo_bytes("soccer"))},
        data={"model": EFFICIENTNET, "top_k": "5"},
    ).json()
    top = reply["predictions"][0]
    shown = table_probabilities(page, "original-table")
    assert next(iter(shown)) == top["class_id"]
    assert shown[top["class_id"]] == pytest.approx(top["probability"], abs=0.03)
    assert table_probabilities(page, "modified-table") != squeezenet
    assert changes(page, "modified-table")[SOCCER_BALL] != "–"

    # A step not seen by this model yet is classified when undo shows it.
    page.click("#undo-button")
    wait_for_edits(page, 1)
    assert [form["model"] for form in sent_forms(page, "/api/v1/classify")] == [EFFICIENTNET] * 3
    # Back to SqueezeNet: its results were kept, nothing is asked again.
    choose_model(page, SQUEEZENET)
    page.click("#redo-button")
    wait_for_edits(page, 2)
    page.wait_for_function(BUSY_DONE)
    assert table_probabilities(page, "modified-table") == squeezenet
    assert len(sent_forms(page, "/api/v1/classify")) == 3

    # Explain explains the chosen model.
    choose_model(page, EFFICIENTNET)
    page.click("#explain-run")
    page.wait_for_function("window.sentForms.some(f => f.url.endsWith('/api/v1/explain'))")
    page.click("#explain-cancel")
    (explain,) = sent_forms(page, "/api/v1/explain")
    assert explain["model"] == EFFICIENTNET


def test_compare_answers_in_the_same_edit_request_beside_the_first(page):
    assert page.is_hidden("#compare-block")
    page.select_option("#compare-select", EFFICIENTNET)
    page.wait_for_selector("#compare-block:not([hidden])")
    page.click(f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
    page.wait_for_function(
        f"document.getElementById('compare-block').dataset.camClass === '{SOCCER_BALL}'"
    )
    page.evaluate(RECORD_FORMS)

    brush_over_the_ball(page, strokes=2)
    page.wait_for_function(
        f"""!document.getElementById('map-legend').hidden && {BUSY_DONE}
            && document.getElementById('compare-block').dataset.camClass === '{SOCCER_BALL}'"""
    )
    # One request per stroke answers both models; nothing else was asked.
    edits = sent_forms(page, "/api/v1/edit")
    assert [(f["model"], f["compare"]) for f in edits] == [(SQUEEZENET, EFFICIENTNET)] * 2
    assert not sent_forms(page, "/api/v1/classify")

    # Each table, its own model's numbers and changes against its own original.
    ours, theirs = changes(page, "modified-table"), changes(page, "compare-table")
    assert set(ours) == set(theirs)
    assert ours[SOCCER_BALL].startswith("▼") and theirs[SOCCER_BALL].startswith("▼")
    assert table_probabilities(page, "modified-table") != table_probabilities(page, "compare-table")
    assert "Compare: EfficientNet-Lite0" in page.text_content("#compare-title")
    # Both models' maps of the soccer ball, on both images.
    for canvas in ("original-cam", "modified-cam", "compare-original-cam", "compare-modified-cam"):
        assert page.evaluate(OPAQUE, canvas) > 500, canvas
    assert "mean evidence" in page.text_content("#compare-status")

    # Still one screen at 1280x720, the compare table included.
    assert page.evaluate("scrollY") == 0
    for selector in ("#original-canvas", "#modified-canvas", "#map-legend", "#compare-table"):
        box_in_viewport(page, selector)
    box_in_viewport(page, f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
    screenshot(page, "compare-1280x720", full_page=False)
    assert accessibility_violations(page) == []


def test_an_unavailable_model_is_disabled_with_its_reason_shown(page):
    option = page.locator('#model-select option[value="broken"]')
    assert option.is_disabled()
    assert BROKEN_REASON in option.text_content()
    assert page.locator('#compare-select option[value="broken"]').is_disabled()
    # Written out on the page, not only in a menu or a tooltip.
    assert page.is_visible("#model-note")
    assert f"broken is unavailable: {BROKEN_REASON}" in page.text_content("#model-note")
    box_in_viewport(page, "#model-note")
    # Every available model can be chosen.
    for name in (SQUEEZENET, EFFICIENTNET, "mlp"):
        assert page.locator(f'#model-select option[value="{name}"]').is_enabled()


def test_a_model_without_cams_hides_them_and_still_explains(page):
    page.click(f'#modified-table tr[data-class-id="{SOCCER_BALL}"]')
    page.wait_for_function("!document.getElementById('map-legend').hidden")
    assert "cam" in page.eval_on_selector_all("#map-select option", "os => os.map(o => o.value)")

    choose_model(page, "mlp")
    assert page.text_content("#original-table tbody tr[data-class-id] .label") in {
        "one",
        "two",
        "three",
    }
    # A row chosen: no CAM choice and no CAM drawn; the status says why.
    page.click("#modified-table tbody tr[data-class-id]")
    page.wait_for_function(BUSY_DONE)
    assert page.locator('#modified-table tr[aria-selected="true"]').count() == 1
    assert page.eval_on_selector_all("#map-select option", "os => os.map(o => o.value)") == ["none"]
    assert page.is_hidden("#map-legend")
    assert "no class activation maps" in page.text_content("#cam-status")
    assert page.evaluate(OPAQUE, "modified-cam") == 0
    # ImageNet models have other classes: they cannot be its compare model.
    assert page.locator(f'#compare-select option[value="{SQUEEZENET}"]').is_disabled()
    assert "other classes" in page.text_content(f'#compare-select option[value="{SQUEEZENET}"]')
    # A stroke asks for no CAMs, and Explain still runs for it.
    page.evaluate(RECORD_FORMS)
    brush_over_the_ball(page, strokes=1)
    (edit,) = sent_forms(page, "/api/v1/edit")
    assert (edit["model"], edit["cam"]) == ("mlp", "none")
    page.click("#explain-run")
    page.wait_for_function(
        "document.querySelector('.explain-status').textContent.includes('windows of')",
        timeout=90_000,
    )
    assert page.is_hidden("#error-banner")


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
    page.wait_for_function(
        "document.querySelector('#notice-text').textContent.includes('Opened the session')"
    )
    page.wait_for_function(BUSY_DONE)


def test_a_session_keeps_the_models_and_old_files_still_open(page, tmp_path):
    choose_model(page, EFFICIENTNET)
    page.select_option("#compare-select", SQUEEZENET)
    page.wait_for_selector("#compare-table tbody tr[data-class-id]")
    brush_over_the_ball(page, strokes=1)
    page.wait_for_selector("#compare-table tbody tr[data-class-id]")
    saved = {
        t: table_probabilities(page, t)
        for t in ("modified-table", "original-table", "compare-table")
    }
    data = export_session(page, tmp_path)
    session = json.loads(data)
    assert (session["view"]["model"], session["view"]["compare"]) == (EFFICIENTNET, SQUEEZENET)
    assert [r["model"] for r in session["entries"][1]["results"]] == [EFFICIENTNET, SQUEEZENET]

    choose_model(page, SQUEEZENET)
    page.select_option("#compare-select", "")
    choose_gallery_photo(page, "hockey", "Hockey")
    open_session(page, "soccer-session.json", data)
    assert page.input_value("#model-select") == EFFICIENTNET
    assert page.input_value("#compare-select") == SQUEEZENET
    page.wait_for_selector("#compare-table tbody tr[data-class-id]")
    assert {t: table_probabilities(page, t) for t in saved} == saved
    assert page.is_hidden("#error-banner")

    # A file from before the model picker: no models in its view, results of the default only.
    old = json.loads(data)
    del old["view"]["model"], old["view"]["compare"]
    for entry in old["entries"]:
        entry["results"] = [r for r in entry["results"] if r["model"] == SQUEEZENET]
    open_session(page, "old-session.json", json.dumps(old).encode())
    assert page.input_value("#model-select") == SQUEEZENET
    assert page.input_value("#compare-select") == ""
    assert page.is_hidden("#compare-block")
    original = old["entries"][0]["results"][0]["predictions"]
    assert table_probabilities(page, "original-table") == {
        p["class_id"]: p["probability"] for p in original[:5]
    }
    assert page.is_hidden("#error-banner")
