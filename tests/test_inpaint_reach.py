"""Each engine's declared reach (EngineInfo.reach_px / reach_factor /
reads_whole_image) is true: inpainting only the part of a large image within
the reach of the hole fills the hole exactly as inpainting the whole image."""

from __future__ import annotations

import math

import cv2
import grpc
import numpy as np
import pytest

from ic.v1 import inpainter_pb2, inpainter_pb2_grpc
from services.inpainter.engines import build_registry as opencv_engines
from services.patchmatch.engines import build_registry as patchmatch_engines
from services.patchmatch.native import library_status


def engine(name: str):
    if name == "patchmatch":
        if not library_status()[0]:
            pytest.skip("the PatchMatch library is not built (make native)")
        return patchmatch_engines(default="patchmatch").get(name)
    return opencv_engines(default="telea").get(name)


@pytest.mark.parametrize("name", ["telea", "navier-stokes", "patchmatch"])
def test_a_crop_within_the_reach_fills_the_hole_exactly_as_the_whole_image(name, photo_rgb):
    chosen = engine(name)
    params = chosen.resolve_params({})
    reach = chosen.reach(params)
    assert not reach.whole_image
    image = cv2.resize(photo_rgb("soccer"), (900, 700))
    mask = np.zeros(image.shape[:2], bool)
    cv2.line(mask.view(np.uint8), (400, 330), (480, 370), 1, 20)
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    margin = reach.pixels + math.ceil(reach.factor * max(y1 - y0, x1 - x0))
    top, left = max(0, y0 - margin), max(0, x0 - margin)
    bottom, right = min(700, y1 + margin), min(900, x1 + margin)
    assert (bottom - top) * (right - left) < 0.7 * mask.size  # a real crop
    whole = chosen.inpaint(image, mask, params, seed=3)
    part = chosen.inpaint(
        np.ascontiguousarray(image[top:bottom, left:right]),
        np.ascontiguousarray(mask[top:bottom, left:right]),
        params,
        seed=3,
    )
    assert np.array_equal(part, whole[top:bottom, left:right])


def test_engines_that_read_everything_say_so(photo_rgb):
    registry = opencv_engines(default="telea")
    for name in ("blur", "mean"):
        chosen = registry.get(name)
        assert chosen.reach(chosen.resolve_params({})).whole_image


def test_get_info_reports_the_reach(inpainter_service):
    with grpc.insecure_channel(inpainter_service.address) as channel:
        info = inpainter_pb2_grpc.InpainterStub(channel).GetInfo(
            inpainter_pb2.GetInfoRequest(), timeout=10
        )
    engines = {e.name: e for e in info.engines}
    assert (engines["telea"].reach_px, engines["telea"].reads_whole_image) == (8, False)
    assert engines["mean"].reads_whole_image
