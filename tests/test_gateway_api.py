"""The happy path of every endpoint of API.md, against the real gateway and services."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GALLERY_TOP1

SOCCER_BALL = 805


def decode_b64_png(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    assert image.format == "PNG"
    return image


def test_healthz(gateway_service):
    reply = gateway_service.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_readyz_names_every_dependency(gateway_service):
    reply = gateway_service.get("/readyz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ready"
    assert body["dependencies"]["classifier"]["ready"] is True
    assert len(body["dependencies"]["inpainters"]) == 2


def test_info_describes_model_backends_and_limits(gateway_service):
    body = gateway_service.get("/api/v1/info").json()
    assert body["model"]["name"] == "squeezenet1.1"
    assert body["model"]["num_classes"] == 1000
    assert body["model"]["cam"] is True
    assert body["model"]["input_size"] == [224, 224]
    backends = {b["name"]: b for b in body["backends"]}
    assert {"telea", "navier-stokes", "patchmatch"} <= set(backends)
    assert backends["telea"]["default"] is True
    assert sum(b["default"] for b in backends.values()) == 1
    assert backends["telea"]["available"] is True
    assert all(b["description"] for b in backends.values())
    assert body["limits"] == {
        "max_upload_bytes": 10 * 1024 * 1024,
        "max_pixels": 4096 * 3072,
        "max_side": 4096,
        "max_top_k": 1000,
        "max_cams": 16,
        "cam_max_side": 512,
    }


def test_labels_in_class_id_order(gateway_service):
    labels = gateway_service.get("/api/v1/labels").json()["labels"]
    assert len(labels) == 1000
    assert labels[SOCCER_BALL] == "soccer ball"
    assert labels[0] == "tench, Tinca tinca"


def test_gallery_lists_the_photos_and_serves_them(gateway_service, images_dir):
    images = gateway_service.get("/api/v1/gallery").json()["images"]
    by_id = {image["id"]: image for image in images}
    assert set(GALLERY_TOP1) <= set(by_id)
    assert by_id["hockey2"]["title"] == "Hockey 2"
    photo = gateway_service.get(by_id["soccer"]["url"])
    assert photo.status_code == 200
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert photo.content == (images_dir / "soccer.jpg").read_bytes()


@pytest.mark.parametrize("photo", sorted(GALLERY_TOP1))
def test_classify_gives_each_gallery_photo_its_known_top1(gateway_service, photo_bytes, photo):
    reply = gateway_service.post("/api/v1/classify", files={"image": photo_bytes(photo)})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    assert len(predictions) == 5
    assert predictions[0]["label"] == GALLERY_TOP1[photo]
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)


def test_classify_pinned_classes_and_cams(gateway_service, photo_bytes):
    reply = gateway_service.post(
        "/api/v1/classify",
        files={"image": ("soccer.jpg", photo_bytes("soccer"), "image/jpeg")},
        data={"top_k": "3", "classes": "409,805", "cam": "top"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "squeezenet1.1"
    assert [p["rank"] for p in body["predictions"]] == [1, 2, 3]
    pinned = body["pinned"]
    assert [p["class_id"] for p in pinned] == [409, SOCCER_BALL]
    assert pinned[1]["rank"] == 1
    assert pinned[0]["rank"] > 3 and pinned[0]["label"] == "analog clock"
    cams = body["cams"]
    assert [c["class_id"] for c in cams] == [p["class_id"] for p in body["predictions"]]
    for cam in cams:
        image = decode_b64_png(cam["png"])
        assert image.mode == "L" and image.size == (227, 227) == (cam["width"], cam["height"])
        values = np.asarray(image)
        assert values.max() == 255 and values.min() == 0
    assert body["served_by"]["classifier"]
    assert body["timing_ms"]["total"] > 0


def test_classify_cam_for_listed_classes_only(gateway_service, photo_bytes):
    body = gateway_service.post(
        "/api/v1/classify", files={"image": photo_bytes("soccer")}, data={"cam": "805, 1"}
    ).json()
    assert [c["class_id"] for c in body["cams"]] == [SOCCER_BALL, 1]
    assert (
        gateway_service.post(
            "/api/v1/classify", files={"image": photo_bytes("soccer")}, data={"cam": "none"}
        ).json()["cams"]
        == []
    )


def test_inpaint_changes_only_the_masked_pixels(
    gateway_service, photo_bytes, photo_rgb, stroke_png
):
    reply = gateway_service.post(
        "/api/v1/inpaint",
        files={"image": photo_bytes("soccer"), "mask": stroke_png},
        data={"backend": "telea"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["backend"] == "telea" and body["fallback"] is False
    result = np.asarray(decode_b64_png(body["image"]).convert("RGB"))
    original = photo_rgb("soccer")
    mask = np.asarray(Image.open(io.BytesIO(stroke_png))) != 0
    assert result.shape == original.shape
    assert np.array_equal(result[~mask], original[~mask])
    assert np.abs(result[mask].astype(int) - original[mask].astype(int)).mean() > 1
    assert body["served_by"]["inpainter"]


def test_inpaint_uses_the_default_backend_when_none_is_named(
    gateway_service, photo_bytes, stroke_png
):
    body = gateway_service.post(
        "/api/v1/inpaint", files={"image": photo_bytes("beach"), "mask": stroke_png}
    ).json()
    assert body["backend"] == "telea" and body["fallback"] is False


def test_inpaint_with_the_patchmatch_backend(gateway_service, photo_bytes, stroke_png):
    info = {b["name"]: b for b in gateway_service.get("/api/v1/info").json()["backends"]}
    if not info["patchmatch"]["available"]:
        pytest.skip(f"patchmatch unavailable: {info['patchmatch']['unavailable_reason']}")
    body = gateway_service.post(
        "/api/v1/inpaint",
        files={"image": photo_bytes("soccer"), "mask": stroke_png},
        data={"backend": "patchmatch"},
    ).json()
    assert body["backend"] == "patchmatch" and body["fallback"] is False


def test_edit_is_inpaint_then_classify_in_one_answer(gateway_service, photo_bytes, stroke_png):
    reply = gateway_service.post(
        "/api/v1/edit",
        files={"image": photo_bytes("soccer"), "mask": stroke_png},
        data={"backend": "telea", "top_k": "5", "classes": "805,522", "cam": "805"},
    )
    assert reply.status_code == 200, reply.text
    edit = reply.json()
    assert edit["backend"] == "telea" and edit["fallback"] is False
    assert [p["class_id"] for p in edit["pinned"]] == [SOCCER_BALL, 522]
    assert [c["class_id"] for c in edit["cams"]] == [SOCCER_BALL]
    assert set(edit["served_by"]) == {"gateway", "inpainter", "classifier"}
    # The classification is that of the returned image: classify it and compare.
    inpainted_png = base64.b64decode(edit["image"])
    again = gateway_service.post(
        "/api/v1/classify", files={"image": inpainted_png}, data={"classes": "805,522"}
    ).json()
    assert [p["class_id"] for p in again["predictions"]] == [
        p["class_id"] for p in edit["predictions"]
    ]
    for mine, theirs in zip(edit["pinned"], again["pinned"], strict=True):
        assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-5)
    original = gateway_service.post(
        "/api/v1/classify", files={"image": photo_bytes("soccer")}, data={"classes": "805"}
    ).json()
    assert original["pinned"][0]["probability"] != edit["pinned"][0]["probability"]


def test_request_id_is_echoed_or_generated(gateway_service):
    given = gateway_service.get("/api/v1/labels", headers={"X-Request-ID": "trace-42.a"})
    assert given.headers["X-Request-ID"] == "trace-42.a"
    generated = gateway_service.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # Something unsafe for a log line is replaced, not echoed.
    unsafe = gateway_service.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["X-Request-ID"] != "a b\tc"


def test_request_id_reaches_the_log(gateway_service):
    gateway_service.get("/api/v1/info", headers={"X-Request-ID": "find-me-in-the-log-7"})
    assert '"request_id": "find-me-in-the-log-7"' in gateway_service.log_tail(200)


def metric_samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def test_metrics_count_requests_by_route_and_code(gateway_service):
    gateway_service.get("/api/v1/labels")
    gateway_service.get("/api/v1/no-such-thing")
    samples = metric_samples(gateway_service.get("/metrics").text)

    def value(name: str, **labels) -> float:
        found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
        return sum(found)

    assert value("ic_http_requests_total", route="/api/v1/labels", method="GET", code="200") >= 1
    assert value("ic_http_requests_total", route="unmatched", method="GET", code="404") >= 1
    # Latency in seconds, with buckets fine enough for the 25 ms target of /edit.
    buckets = {
        s.labels["le"]
        for s in samples
        if s.name == "ic_http_request_duration_seconds_bucket"
        and s.labels["route"] == "/api/v1/labels"
    }
    assert {"0.015", "0.02", "0.03"} <= buckets
    assert value("ic_http_request_duration_seconds_count", route="/api/v1/labels") >= 1


def test_the_web_page_is_served_at_the_root(gateway_service):
    reply = gateway_service.get("/")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "<html" in reply.text.lower()
