"""Every error status of API.md, caused for real against the running gateway:
each answer is the JSON error shape with a message naming the problem, and
nothing ever gets a 500."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image

from tests.gateway_fixtures import png_bytes, stroke_mask


def assert_error(reply, status: int, code: str, *words: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] == code
    for word in words:
        assert word in error["message"], error["message"]
    return error


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def soccer(photo_bytes) -> bytes:
    return photo_bytes("soccer")


@pytest.mark.parametrize("endpoint", ["/api/v1/classify", "/api/v1/inpaint", "/api/v1/edit"])
def test_bad_image_bytes_are_400(gateway_service, stroke_png, endpoint):
    reply = gateway_service.post(
        endpoint, files={"image": b"this is not an image at all", "mask": stroke_png}
    )
    assert_error(reply, 400, "invalid_argument", "image could not be decoded")


def test_truncated_jpeg_is_400(gateway_service, soccer):
    reply = gateway_service.post("/api/v1/classify", files={"image": soccer[: len(soccer) // 3]})
    assert_error(reply, 400, "invalid_argument", "image")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_unsupported_image_types_are_415(gateway_service, photo_rgb, fmt):
    reply = gateway_service.post(
        "/api/v1/classify", files={"image": encoded(photo_rgb("soccer"), fmt)}
    )
    assert_error(reply, 415, "unsupported_media_type", fmt, "PNG, JPEG and WebP")


def test_webp_is_accepted(gateway_service, photo_rgb):
    reply = gateway_service.post(
        "/api/v1/classify", files={"image": encoded(photo_rgb("soccer"), "WEBP")}
    )
    assert reply.status_code == 200, reply.text


def test_a_request_that_is_not_multipart_is_415(gateway_service):
    reply = gateway_service.post("/api/v1/classify", json={"image": "soccer.jpg"})
    assert_error(reply, 415, "unsupported_media_type", "multipart/form-data")


def test_missing_parts_are_400(gateway_service, soccer):
    assert_error(
        gateway_service.post("/api/v1/classify", files={"picture": soccer}),
        400,
        "invalid_argument",
        "missing part 'image'",
    )
    assert_error(
        gateway_service.post("/api/v1/inpaint", files={"image": soccer}),
        400,
        "invalid_argument",
        "missing part 'mask'",
    )
    assert_error(
        gateway_service.post("/api/v1/classify", data={"image": "soccer.jpg"}, files={"x": b"1"}),
        400,
        "invalid_argument",
        "file part",
    )


def test_mask_of_the_wrong_size_is_400(gateway_service, soccer):
    wrong = png_bytes(stroke_mask(200, 227))
    for endpoint in ("/api/v1/inpaint", "/api/v1/edit"):
        reply = gateway_service.post(endpoint, files={"image": soccer, "mask": wrong})
        assert_error(reply, 400, "invalid_argument", "227x200", "227x227", "same size")


def test_empty_mask_is_a_no_op_everywhere(gateway_service, soccer, photo_rgb):
    # One rule for inpaint, edit and explain's fix-it: removing nothing is valid
    # and answered 200 with the image unchanged (API.md's Errors list no such 400).
    empty = png_bytes(np.zeros((227, 227), np.uint8))
    reply = gateway_service.post("/api/v1/inpaint", files={"image": soccer, "mask": empty})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["removed_pixels"] == 0
    unchanged = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))).convert("RGB"))
    assert np.array_equal(unchanged, photo_rgb("soccer"))

    edit = gateway_service.post(
        "/api/v1/edit", files={"image": soccer, "mask": empty}, data={"top_k": "3"}
    )
    classify = gateway_service.post(
        "/api/v1/classify", files={"image": soccer}, data={"top_k": "3"}
    )
    assert edit.status_code == 200, edit.text
    assert edit.json()["removed_pixels"] == 0
    assert [p["class_id"] for p in edit.json()["predictions"]] == [
        p["class_id"] for p in classify.json()["predictions"]
    ]
    assert edit.json()["predictions"][0]["probability"] == pytest.approx(
        classify.json()["predictions"][0]["probability"], abs=1e-6
    )


def test_mask_that_is_not_an_image_is_400(gateway_service, soccer):
    reply = gateway_service.post("/api/v1/edit", files={"image": soccer, "mask": b"GIF89a..."})
    assert_error(reply, 400, "invalid_argument", "mask")


def test_unknown_backend_is_404(gateway_service, soccer, stroke_png):
    for name in ("no-such-engine", "../../etc/passwd"):
        reply = gateway_service.post(
            "/api/v1/inpaint",
            files={"image": soccer, "mask": stroke_png},
            data={"backend": name},
        )
        assert_error(reply, 404, "not_found", "unknown backend")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"classes": "1000"}, ["unknown class id 1000", "0..999"]),
        ({"classes": "805,-1"}, ["unknown class id -1"]),
        ({"classes": "soccer"}, ["'soccer' is not a class id"]),
        ({"classes": "805,,1"}, ["comma-separated"]),
        ({"cam": "4242"}, ["unknown class id 4242"]),
        ({"cam": "everything"}, ["cam"]),
        ({"top_k": "0"}, ["top_k=0 is out of range 1..1000"]),
        ({"top_k": "1001"}, ["top_k=1001 is out of range"]),
        ({"top_k": "five"}, ["top_k='five' is not an integer"]),
        ({"top_k": "2.5"}, ["not an integer"]),
        ({"top_k": "50", "cam": "top"}, ["at most 16"]),
    ],
)
def test_invalid_classify_fields_are_400(gateway_service, soccer, stroke_png, fields, words):
    for endpoint in ("/api/v1/classify", "/api/v1/edit"):
        reply = gateway_service.post(
            endpoint, files={"image": soccer, "mask": stroke_png}, data=fields
        )
        assert_error(reply, 400, "invalid_argument", *words)


def test_too_many_pixels_is_413(gateway_service):
    # 4000 x 4000 = 16 M pixels > 4096 x 3072, every side within 4096: the pixel
    # limit. A flat PNG of that size is a few kB: the header is read, nothing decoded.
    big = Image.new("L", (4000, 4000), 128)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    reply = gateway_service.post("/api/v1/classify", files={"image": buf.getvalue()})
    assert_error(reply, 413, "too_large", "4000x4000", "16000000 pixels")


def test_too_long_a_side_is_413(gateway_service):
    buf = io.BytesIO()
    Image.new("RGB", (5000, 8), (1, 2, 3)).save(buf, format="PNG")
    reply = gateway_service.post("/api/v1/classify", files={"image": buf.getvalue()})
    assert_error(reply, 413, "too_large", "5000x8", "longest side")


def test_body_too_large_is_413(gateway_service):
    eleven_mib = b"\0" * (11 * 1024 * 1024)
    reply = gateway_service.post("/api/v1/classify", files={"image": eleven_mib})
    assert_error(reply, 413, "too_large", str(10 * 1024 * 1024))
    # The gateway is fine afterwards.
    assert gateway_service.get("/healthz").status_code == 200


def test_unknown_route_is_404_whatever_the_method(gateway_service):
    for method in ("GET", "POST", "DELETE"):
        reply = requests.request(method, gateway_service.url + "/api/v1/nothing-here", timeout=10)
        assert_error(reply, 404, "not_found", "/api/v1/nothing-here")
    assert_error(gateway_service.get("/no/such/page.html"), 404, "not_found")


def test_wrong_method_is_405(gateway_service):
    reply = gateway_service.get("/api/v1/classify")
    error = assert_error(reply, 405, "method_not_allowed", "GET", "POST")
    assert "POST" in reply.headers["Allow"]
    assert error["message"]
    assert_error(gateway_service.post("/api/v1/info"), 405, "method_not_allowed")


def test_unknown_gallery_photo_is_404(gateway_service):
    assert_error(gateway_service.get("/api/v1/gallery/nope.jpg"), 404, "not_found")
    assert_error(gateway_service.get("/api/v1/gallery/../conftest.py"), 404, "not_found")
    assert_error(
        gateway_service.get("/api/v1/gallery/PROVENANCE.md"), 404, "not_found", "PROVENANCE.md"
    )


def test_example_mask_beyond_the_limits_is_413(gateway_service):
    assert_error(
        gateway_service.get("/api/v1/examples/stroke-5000x5000.png"), 413, "too_large", "5000"
    )


@pytest.mark.parametrize("seed", range(6))
def test_garbage_never_gets_a_500(gateway_service, soccer, stroke_png, seed):
    rng = np.random.default_rng(seed)
    garbage = rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
    field_values = ["", " ", "-", "9" * 40, "1e9", "\u00e9", "top,none", "0x10", garbage[:20].hex()]
    for endpoint in ("/api/v1/classify", "/api/v1/inpaint", "/api/v1/edit"):
        fields = {
            name: field_values[int(rng.integers(len(field_values)))]
            for name in ("top_k", "classes", "cam", "backend")
        }
        files = {
            "image": garbage if seed % 2 else soccer,
            "mask": stroke_png if seed % 3 else garbage,
        }
        reply = gateway_service.post(endpoint, files=files, data=fields)
        assert 200 <= reply.status_code < 500, (endpoint, fields, reply.text)
        if reply.status_code >= 400:
            assert reply.json()["error"]["message"]
