"""POST /api/v1/segment through the real gateway and OpenCV service."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.gateway_fixtures import GatewayProcess
from tests.support.processes import free_port
from tests.test_segmenter_service import ball_disc


def mask_of(body: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask"])))) > 0


def test_a_click_on_the_ball_proposes_the_ball(gateway_service, photo_bytes):
    reply = gateway_service.post(
        "/api/v1/segment", files={"image": photo_bytes("soccer")}, data={"x": "40", "y": "142"}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    region, ball = mask_of(body), ball_disc()
    assert region.shape == (227, 227) == (body["height"], body["width"])
    assert (region & ball).sum() >= 0.6 * ball.sum() and (region & ~ball).sum() <= 0.5 * ball.sum()
    assert body["pixels"] == region.sum() and body["fraction"] == pytest.approx(
        region.sum() / 227**2
    )
    assert body["box"]["x"] <= 40 < body["box"]["x"] + body["box"]["width"]
    assert body["served_by"]["segmenter"]


def test_a_box_grown_by_two_pixels(gateway_service, photo_bytes):
    reply = gateway_service.post(
        "/api/v1/segment",
        files={"image": photo_bytes("soccer")},
        data={"box": "110, 80, 70, 120", "grow": "2"},
    )
    assert reply.status_code == 200, reply.text
    region = mask_of(reply.json())
    assert region[110, 140] and region.sum() > 500


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"x": "300", "y": "10"}, "outside the 227x227 image"),
        ({"x": "10"}, "give a click on the object (x and y) or a box"),
        ({}, "give a click on the object (x and y) or a box"),
        ({"box": "10,10,0,30"}, "has no area"),
        ({"box": "200,10,40,30"}, "does not fit in the 227x227 image"),
        ({"box": "1,2,3"}, "give x,y,width,height"),
        ({"box": "10,10,5,5", "x": "3", "y": "4"}, "not both"),
        ({"x": "-1", "y": "4"}, "x must be at least 0"),
        ({"x": "4", "y": "4", "grow": "500"}, "grow=500 is out of range"),
    ],
)
def test_bad_prompts_are_400_naming_the_problem(gateway_service, photo_bytes, fields, words):
    reply = gateway_service.post(
        "/api/v1/segment", files={"image": photo_bytes("soccer")}, data=fields
    )
    assert reply.status_code == 400, reply.text
    assert words in reply.json()["error"]["message"]


def test_segmenter_down_is_503_and_nothing_else_breaks(
    classifier_service, inpainter_service, photo_bytes
):
    with GatewayProcess(
        classifier_service.address,
        [inpainter_service.address],
        IC_SEGMENTER_ADDR=f"127.0.0.1:{free_port()}",
    ) as gw:
        reply = gw.post(
            "/api/v1/segment", files={"image": photo_bytes("soccer")}, data={"x": "4", "y": "4"}
        )
        assert reply.status_code == 503, reply.text
        assert "segmenter" in reply.json()["error"]["message"]
        assert gw.get("/readyz").status_code == 200
        assert gw.post("/api/v1/classify", files={"image": photo_bytes("soccer")}).ok
