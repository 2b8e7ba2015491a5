"""The Segmenter (GrabCut) of the OpenCV service over gRPC: a click or a box
proposes one object's region; bad prompts are INVALID_ARGUMENT naming them."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from common.images import raw_image
from ic.v1 import image_pb2, segmenter_pb2, segmenter_pb2_grpc

# The soccer ball of the gallery photo: a disc of radius 4.5 px at (40, 142).
BALL_CENTRE, BALL_RADIUS = (40, 142), 4.5


@pytest.fixture(scope="module")
def stub(inpainter_service):
    channel = grpc.insecure_channel(inpainter_service.address)
    yield segmenter_pb2_grpc.SegmenterStub(channel)
    channel.close()


def ball_disc(height: int = 227, width: int = 227) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return (cols - BALL_CENTRE[0]) ** 2 + (rows - BALL_CENTRE[1]) ** 2 <= BALL_RADIUS**2


def region_of(reply: segmenter_pb2.SegmentResponse) -> np.ndarray:
    raw = reply.mask.raw
    return np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.width) > 0


def segment(stub, rgb, **prompt) -> segmenter_pb2.SegmentResponse:
    return stub.Segment(segmenter_pb2.SegmentRequest(image=raw_image(rgb), **prompt), timeout=30)


def test_one_click_on_the_ball_proposes_the_ball(stub, photo_rgb):
    reply = segment(stub, photo_rgb("soccer"), point=segmenter_pb2.Point(x=40, y=142))
    region, ball = region_of(reply), ball_disc()
    assert (region & ball).sum() >= 0.6 * ball.sum()  # most of the ball
    assert (region & ~ball).sum() <= 0.5 * ball.sum()  # and little grass
    box = reply.box
    assert 30 <= box.x < 40 < box.x + box.width <= 50 and 132 <= box.y < 142
    assert reply.pixels == region.sum()


def test_a_box_round_the_boy_proposes_him_inside_it(stub, photo_rgb):
    soccer = photo_rgb("soccer")
    box = image_pb2.MaskRect(x=110, y=80, width=70, height=120)
    region = region_of(segment(stub, soccer, box=box))
    inside = np.zeros_like(region)
    inside[80:200, 110:180] = True
    assert region.sum() > 0.1 * inside.sum()  # a body, not a speck
    assert not (region & ~inside).any()  # nothing outside the box
    # His shirt is in it; the grass at the box's lower corner is not.
    assert region[110, 140] and not region[195, 175]


def test_grow_and_shrink_change_the_region_by_a_margin(stub, photo_rgb):
    soccer, box = photo_rgb("soccer"), image_pb2.MaskRect(x=110, y=80, width=70, height=120)
    plain = region_of(segment(stub, soccer, box=box))
    bigger = region_of(segment(stub, soccer, box=box, grow=3))
    smaller = region_of(segment(stub, soccer, box=box, grow=-2))
    assert smaller.sum() < plain.sum() < bigger.sum()
    assert (plain & ~bigger).sum() == 0 and (smaller & ~plain).sum() == 0


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({"point": segmenter_pb2.Point(x=300, y=10)}, "outside the 227x227 image"),
        ({"box": image_pb2.MaskRect(x=10, y=10, width=0, height=30)}, "has no area"),
        ({"box": image_pb2.MaskRect(x=200, y=10, width=40, height=30)}, "does not fit"),
        ({"box": image_pb2.MaskRect(x=0, y=0, width=227, height=227)}, "whole image"),
        ({}, "no prompt"),
        ({"point": segmenter_pb2.Point(x=5, y=5), "iterations": 11}, "iterations=11"),
        ({"point": segmenter_pb2.Point(x=5, y=5), "grow": 101}, "grow=101"),
    ],
)
def test_bad_prompts_are_invalid_argument(stub, photo_rgb, prompt, message):
    with pytest.raises(grpc.RpcError) as err:
        segment(stub, photo_rgb("soccer"), **prompt)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
