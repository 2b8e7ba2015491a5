"""A 4000x3000 photo (a 1 MB JPEG, as phones take them) through classify and
edit: answers sized to their content, CAMs whose geometry holds when scaled up,
the region answer equal to the whole picture's. Explain on such a photo and
batches cut by bytes are tested in test_explain_api.py and
test_explainer_service.py; bench/bench_bigphoto.py measures sizes, times and
memory."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.support.big_photo import BIG_SIZE, big_photo_jpeg, stroke_mask_png

SOCCER_BALL = 805
STROKE = (1800, 1500, 400, 100)  # x, y, width, height
MB = 1_000_000


def decoded(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


@pytest.fixture(scope="module")
def big_jpeg(images_dir) -> bytes:
    return big_photo_jpeg(images_dir / "soccer.jpg")


@pytest.fixture(scope="module")
def big_rgb(big_jpeg) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(big_jpeg)).convert("RGB"))


def test_classify_with_five_cams_answers_in_under_2_mb(gateway_service, big_jpeg):
    reply = gateway_service.post("/api/v1/classify", files={"image": big_jpeg}, data={"cam": "top"})
    assert reply.status_code == 200, reply.text[:300]
    assert len(reply.content) < 2 * MB
    cams = reply.json()["cams"]
    assert len(cams) == 5
    for cam in cams:
        # The request image's size, so a client knows what the map covers, and a
        # map capped at 512 px on its longer side with the image's aspect.
        assert (cam["width"], cam["height"]) == BIG_SIZE
        assert (cam["map_width"], cam["map_height"]) == (512, 384)
        assert decoded(cam["png"]).shape == (384, 512)


def test_a_capped_cam_scaled_up_is_the_full_size_one(gateway_service, big_jpeg):
    def cam(size: str) -> np.ndarray:
        reply = gateway_service.post(
            "/api/v1/classify",
            files={"image": big_jpeg},
            data={"cam": str(SOCCER_BALL), "cam_size": size},
        )
        assert reply.status_code == 200, reply.text[:300]
        return decoded(reply.json()["cams"][0]["png"]).astype(np.float32)

    full, capped = cam("full"), cam("capped")
    assert full.shape == (3000, 4000)
    scaled = cv2.resize(capped, BIG_SIZE, interpolation=cv2.INTER_LINEAR)
    # Both are the same 15x15-ish map interpolated: the scaled one differs by
    # rounding and interpolation only, and the evidence peaks in the same place.
    assert np.abs(scaled - full).mean() < 2.0
    peak_full = np.unravel_index(np.argmax(cv2.blur(full, (101, 101))), full.shape)
    peak_scaled = np.unravel_index(np.argmax(cv2.blur(scaled, (101, 101))), full.shape)
    assert np.hypot(*np.subtract(peak_full, peak_scaled)) < 100


def test_edit_answers_with_the_region_or_the_whole_picture(gateway_service, big_jpeg, big_rgb):
    def edit(answer: str) -> dict:
        reply = gateway_service.post(
            "/api/v1/edit",
            files={"image": big_jpeg, "mask": stroke_mask_png(BIG_SIZE, STROKE)},
            data={"backend": "telea", "cam": "top", "answer": answer},
        )
        assert reply.status_code == 200, reply.text[:300]
        if answer == "region":
            assert len(reply.content) < 1 * MB
        return reply.json()

    part, whole = edit("region"), edit("image")
    region = part["region"]
    x, y, width, height = (region[key] for key in ("x", "y", "width", "height"))
    # The filled box holds the stroke (and no more than the engine's reach round it).
    assert x <= STROKE[0] and y <= STROKE[1]
    assert x + width >= STROKE[0] + STROKE[2] and y + height >= STROKE[1] + STROKE[3]
    assert width * height < 4 * STROKE[2] * STROKE[3]
    pasted = big_rgb.copy()
    pasted[y : y + height, x : x + width] = decoded(region["png"])[..., :3]
    assert np.array_equal(pasted, decoded(whole["image"]))
    assert part["predictions"] == whole["predictions"]
    assert len(part["cams"]) == 5 and part["cams"][0]["width"] == BIG_SIZE[0]
