"""Reading and checking the multipart parts of API.md, before any gRPC call.

The parts themselves are declared once in gateway/fields.py; this module reads
the composite ones (images, masks, the classify options). Every check answers
with the status API.md gives (400, 404, 413, 415) and a message naming the part
and the problem. Images are decoded once, here, with the same code and limits
the services use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask import current_app, g, request

from common.budget import PixelBudget
from common.images import decode_encoded_rgb, mask_from_encoded
from gateway.errors import ApiError, bad_request
from gateway.fields import (
    ANSWER,
    BACKEND,
    CAM,
    CAM_SIZE,
    CLASSES,
    IMAGE,
    MASK,
    TOP_K,
    parse_class_ids,
)
from gateway.observability import PIXELS_IN_FLIGHT


@dataclass(frozen=True)
class ClassifyParams:
    top_k: int
    pinned: list[int]
    cam_ids: list[int]
    cam_top_k: bool
    # The longest side of the CAM images the classifier sends (0: the image's size).
    cam_max_side: int = 0

    @property
    def wants_cams(self) -> bool:
        return bool(self.cam_ids) or self.cam_top_k


def require_multipart() -> None:
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the request as multipart/form-data with file parts "
            f"(got {request.mimetype or 'no Content-Type'})",
        )


def file_part(name: str, required: bool = True) -> bytes | None:
    """The bytes of file part `name`; 400 if it is required and missing."""
    upload = request.files.get(name)
    if upload is None:
        if name in request.form:
            raise bad_request(f"part {name!r} must be a file part (curl -F '{name}=@file.png')")
        if required:
            raise bad_request(f"missing part {name!r}")
        return None
    return upload.read()


def read_image(name: str = IMAGE.name) -> np.ndarray:
    """The image part, decoded to HxWx3 RGB within the configured limits, once
    its pixels are reserved in this process's budget (held to the request's end)."""
    data = file_part(name)
    return decode_encoded_rgb(
        data, current_app.config["IC"].image_limits, what=name, before_decode=reserve_pixels
    )


def reserve_pixels(width: int, height: int) -> None:
    """Hold width x height pixels of the process's budget until the request ends;
    429 if they cannot be had in time (the gateway is busy with large images)."""
    config = current_app.config["IC"]
    budget: PixelBudget = current_app.extensions["ic_pixels"]
    weight = budget.acquire(width * height, config.pixel_wait_s)
    if weight is None:
        raise ApiError(
            429,
            "resource_exhausted",
            f"the gateway is busy with large images ({budget.in_use} of "
            f"{budget.capacity} pixels in flight); try again in a moment",
            headers={"Retry-After": "5"},
        )
    g.setdefault("ic_reserved_pixels", []).append(weight)
    PIXELS_IN_FLIGHT.inc(weight)


def release_pixels(_exc: BaseException | None = None) -> None:
    """teardown_request: give back what reserve_pixels held."""
    budget: PixelBudget = current_app.extensions["ic_pixels"]
    for weight in g.pop("ic_reserved_pixels", []):
        budget.release(weight)
        PIXELS_IN_FLIGHT.dec(weight)


def read_mask(width: int, height: int, name: str = MASK.name) -> np.ndarray:
    """The mask part -> HxW bool of the image's size.

    A mask that removes nothing is valid: removing nothing is a no-op, answered
    like any other removal (the services return the image unchanged).
    """
    data = file_part(name)
    return mask_from_encoded(data, width, height, what=name)


def parse_classify_params(num_classes: int) -> ClassifyParams:
    """top_k, classes, cam and cam_size of API.md's classify (and edit), for a model
    of num_classes."""
    top_k = TOP_K.read(maximum=min(TOP_K.maximum, num_classes))
    raw_classes = CLASSES.text()
    pinned = [] if raw_classes is None else parse_class_ids(CLASSES.name, raw_classes, num_classes)
    raw_cam = CAM.read()
    cam_ids: list[int] = []
    cam_top_k = False
    if raw_cam == "none":
        pass
    elif raw_cam == "top":
        cam_top_k = True
    else:
        cam_ids = list(dict.fromkeys(parse_class_ids(CAM.name, raw_cam, num_classes)))
    config = current_app.config["IC"]
    cam_count = len(set(cam_ids)) + (top_k if cam_top_k else 0)
    if cam_count > config.max_cams:
        raise bad_request(
            f"cam asks for {cam_count} activation maps; at most {config.max_cams} per request "
            "(use a smaller top_k with cam=top, or list the class ids you need)"
        )
    cam_max_side = 0 if CAM_SIZE.read() == "full" else config.cam_max_side
    return ClassifyParams(
        top_k=top_k,
        pinned=pinned,
        cam_ids=cam_ids,
        cam_top_k=cam_top_k,
        cam_max_side=cam_max_side,
    )


def read_answer() -> str:
    """`answer`: `image` (the whole picture) or `region` (only the filled box)."""
    answer = ANSWER.read()
    if answer not in ("image", "region"):
        raise bad_request(f"answer={answer!r}: use image (the whole picture) or region")
    return answer


def parse_backend() -> str | None:
    name = BACKEND.text()
    if name is not None and (
        len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise ApiError(404, "not_found", f"unknown backend {name[:64]!r}")
    return name
