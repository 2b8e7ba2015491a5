"""/edit and /inpaint with answer=region: only the filled box comes back, and
pasted into the client's own copy it gives exactly the whole picture's answer."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.gateway_fixtures import png_bytes, stroke_mask


def decoded(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB"))


@pytest.mark.parametrize("endpoint", ["/api/v1/edit", "/api/v1/inpaint"])
@pytest.mark.parametrize("backend", ["telea", "patchmatch"])
def test_the_region_pasted_is_the_whole_picture(gateway_service, photo_rgb, endpoint, backend):
    soccer = photo_rgb("soccer")
    mask = stroke_mask(227, 227, rows=slice(60, 75), cols=slice(30, 120))
    files = {"image": png_bytes(soccer), "mask": png_bytes(mask)}
    whole = gateway_service.post(endpoint, files=files, data={"backend": backend})
    part = gateway_service.post(
        endpoint, files=files, data={"backend": backend, "answer": "region"}
    )
    assert whole.status_code == 200 and part.status_code == 200, part.text
    region = part.json()["region"]
    assert "image" not in part.json()
    assert (region["x"], region["y"], region["width"], region["height"]) == (30, 60, 90, 15)
    pasted = soccer.copy()
    pasted[60:75, 30:120] = decoded(region["png"])
    assert np.array_equal(pasted, decoded(whole.json()["image"]))
    if endpoint == "/api/v1/edit":
        assert part.json()["predictions"] == whole.json()["predictions"]


def test_nothing_removed_is_a_null_region(gateway_service, photo_bytes):
    empty = png_bytes(np.zeros((227, 227), np.uint8))
    reply = gateway_service.post(
        "/api/v1/edit",
        files={"image": photo_bytes("soccer"), "mask": empty},
        data={"answer": "region"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["region"] is None and reply.json()["removed_pixels"] == 0


def test_an_unknown_answer_form_is_400(gateway_service, photo_bytes, stroke_png):
    reply = gateway_service.post(
        "/api/v1/edit",
        files={"image": photo_bytes("soccer"), "mask": stroke_png},
        data={"answer": "thumbnail"},
    )
    assert reply.status_code == 400
    assert "answer='thumbnail'" in reply.json()["error"]["message"]
