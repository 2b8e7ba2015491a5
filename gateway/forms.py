"""Reading and checking the multipart parts of API.md, before any gRPC call.

Every check answers with the status API.md gives (400, 413, 415) and a message
naming the part and the problem. Images are decoded once, here, with the same
code and limits the services use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask import current_app, request

from common.images import decode_encoded_rgb, mask_from_encoded
from gateway.errors import ApiError, bad_request

MAX_TOP_K = 1000
# Class ids listed in `classes` or `cam`: more than every class is a mistake.
MAX_CLASS_IDS = 1000


@dataclass(frozen=True)
class ClassifyParams:
    top_k: int
    pinned: list[int]
    cam_ids: list[int]
    cam_top_k: bool


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


def read_image(name: str = "image") -> np.ndarray:
    """The image part, decoded to HxWx3 RGB within the configured limits."""
    data = file_part(name)
    return decode_encoded_rgb(data, current_app.config["IC"].image_limits, what=name)


def read_mask(width: int, height: int, name: str = "mask") -> np.ndarray:
    """The mask part -> HxW bool; it must have the image's size and remove something."""
    data = file_part(name)
    mask = mask_from_encoded(data, width, height, what=name)
    if not mask.any():
        raise bad_request(f"{name} is empty: no pixel is marked for removal")
    return mask


def text_field(name: str) -> str | None:
    value = request.form.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw, 10)
    except ValueError:
        raise bad_request(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise bad_request(f"{name}={value} is out of range {low}..{high}")
    return value


def parse_class_ids(name: str, raw: str, num_classes: int) -> list[int]:
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise bad_request(f"{name}={raw!r}: give comma-separated class ids, e.g. 805,409")
    if len(items) > MAX_CLASS_IDS:
        raise bad_request(f"{name} lists {len(items)} class ids; at most {MAX_CLASS_IDS}")
    ids = []
    for item in items:
        try:
            class_id = int(item, 10)
        except ValueError:
            raise bad_request(f"{name}: {item!r} is not a class id (an integer)") from None
        if not 0 <= class_id < num_classes:
            raise bad_request(
                f"{name}: unknown class id {class_id}; class ids are 0..{num_classes - 1}"
            )
        ids.append(class_id)
    return ids


def parse_classify_params(num_classes: int) -> ClassifyParams:
    """top_k, classes and cam of API.md's classify (and edit)."""
    raw_top_k = text_field("top_k")
    top_k = (
        5 if raw_top_k is None else parse_int("top_k", raw_top_k, 1, min(MAX_TOP_K, num_classes))
    )
    raw_classes = text_field("classes")
    pinned = [] if raw_classes is None else parse_class_ids("classes", raw_classes, num_classes)
    raw_cam = text_field("cam")
    cam_ids: list[int] = []
    cam_top_k = False
    if raw_cam is None or raw_cam == "none":
        pass
    elif raw_cam == "top":
        cam_top_k = True
    else:
        cam_ids = list(dict.fromkeys(parse_class_ids("cam", raw_cam, num_classes)))
    max_cams = current_app.config["IC"].max_cams
    cam_count = len(set(cam_ids)) + (top_k if cam_top_k else 0)
    if cam_count > max_cams:
        raise bad_request(
            f"cam asks for {cam_count} activation maps; at most {max_cams} per request "
            "(use a smaller top_k with cam=top, or list the class ids you need)"
        )
    return ClassifyParams(top_k=top_k, pinned=pinned, cam_ids=cam_ids, cam_top_k=cam_top_k)


def parse_backend() -> str | None:
    name = text_field("backend")
    if name is not None and (
        len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise ApiError(404, "not_found", f"unknown backend {name[:64]!r}")
    return name
