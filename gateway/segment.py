"""POST /api/v1/segment: the select tool's question, relayed to the Segmenter.

A click on an object (`x`, `y`) or a box round it (`box`) comes back as the
object's proposed region, a mask the page outlines for the person to accept,
grow or shrink before removing it. The prompt is checked against the image
here (400 naming the problem); GrabCut runs in the OpenCV service.
"""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint

from common.config import replica_name
from common.images import raw_image
from gateway.api import b64_png, elapsed_ms
from gateway.clients import clients
from gateway.errors import bad_request
from gateway.fields import BOX, CLICK_X, CLICK_Y, GROW, ITERATIONS, parse_int
from gateway.forms import read_image, require_multipart
from gateway.jsonbody import json_response
from ic.v1 import image_pb2, segmenter_pb2

segment_blueprint = Blueprint("segment", __name__, url_prefix="/api/v1")


def read_prompt(width: int, height: int) -> dict:
    """The click or the box of the request, checked against the image's size."""
    x, y, box = CLICK_X.read(), CLICK_Y.read(), BOX.text()
    clicked = x is not None or y is not None
    if clicked and box is not None:
        raise bad_request("give either a click (x and y) or a box, not both")
    if box is not None:
        numbers = [item.strip() for item in box.split(",")]
        if len(numbers) != 4:
            raise bad_request(f"box={box!r}: give x,y,width,height in pixels")
        bx, by, bw, bh = (parse_int("box", item) for item in numbers)
        if bw <= 0 or bh <= 0:
            raise bad_request(f"box {bw}x{bh} has no area: draw a box round the object")
        if bx < 0 or by < 0 or bx + bw > width or by + bh > height:
            raise bad_request(
                f"box x={bx} y={by} {bw}x{bh} does not fit in the {width}x{height} image"
            )
        return {"box": image_pb2.MaskRect(x=bx, y=by, width=bw, height=bh)}
    if x is None or y is None:
        raise bad_request("give a click on the object (x and y) or a box round it")
    if x >= width or y >= height:
        raise bad_request(f"the click at x={x} y={y} is outside the {width}x{height} image")
    return {"point": segmenter_pb2.Point(x=x, y=y)}


@segment_blueprint.post("/segment")
def segment():
    started = time.perf_counter()
    require_multipart()
    rgb = read_image()
    height, width = rgb.shape[:2]
    prompt = read_prompt(width, height)
    request = segmenter_pb2.SegmentRequest(
        image=raw_image(rgb), grow=GROW.read(), iterations=ITERATIONS.read(), **prompt
    )
    decoded = time.perf_counter()
    reply = clients().segmenter.segment(request)
    segmented = time.perf_counter()
    raw = reply.mask.raw
    region = np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.width)
    box = reply.box if reply.HasField("box") else None
    return json_response(
        {
            "mask": b64_png(region),
            "box": (
                {"x": box.x, "y": box.y, "width": box.width, "height": box.height}
                if box is not None
                else None
            ),
            "pixels": reply.pixels,
            "fraction": reply.pixels / (width * height),
            "width": width,
            "height": height,
            "timing_ms": {
                "decode": round((decoded - started) * 1e3, 2),
                "segment": round((segmented - decoded) * 1e3, 2),
                "segmenter_grabcut": round(reply.elapsed_ms, 2),
                "encode": elapsed_ms(segmented),
                "total": elapsed_ms(started),
            },
            "served_by": {"gateway": replica_name(), "segmenter": reply.served_by},
        }
    )
