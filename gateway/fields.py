"""The multipart parts of the HTTP API, each declared once.

A `Part` is both what the OpenAPI document says about a part (type, range,
default, description: `Part.schema()`) and how an endpoint reads it from the
current request (`Part.read()`: the value, checked, or the default). Checks
that depend on the model or on configuration (class ids, top_k's maximum,
explain's limits) pass the bound in: `TOP_K.read(maximum=num_classes)`.

Every endpoint lists its parts (`CLASSIFY_PARTS`, ...); gateway/openapi.py
builds the request bodies from the same lists, so a part cannot be parsed one
way and documented another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flask import request

from gateway.errors import bad_request

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# Class ids listed in `classes` or `cam`: more than every class is a mistake.
MAX_CLASS_IDS = 1000


@dataclass(frozen=True)
class Part:
    name: str
    kind: str  # "file", "integer", "number", "boolean" or "string"
    description: str = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    # minimum itself is refused (fix_fraction > 0).
    exclusive_minimum: bool = False
    required: bool = False
    # The only values a string part accepts (the OpenAPI enum).
    choices: tuple[str, ...] = ()

    def schema(self) -> dict:
        """This part's property in the OpenAPI document."""
        if self.kind == "file":
            return {"type": "string", "format": "binary", "description": self.description}
        schema: dict[str, Any] = {"type": self.kind}
        if self.description:
            schema["description"] = self.description
        if self.minimum is not None:
            schema["minimum"] = self.minimum
            if self.exclusive_minimum:
                schema["exclusiveMinimum"] = True
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        if self.choices:
            schema["enum"] = list(self.choices)
        return schema

    def text(self) -> str | None:
        """The part's text, stripped; None when absent or blank."""
        value = request.form.get(self.name)
        if value is None:
            if self.name in request.files:
                raise bad_request(f"part {self.name!r} must be a text part, not a file")
            return None
        value = value.strip()
        return value or None

    def read(self, maximum: float | None = None, minimum: float | None = None) -> Any:
        """The checked value of this part in the current request, or its default.

        `maximum` / `minimum` replace the declared bounds where they depend on
        the model or the configuration."""
        raw = self.text()
        if raw is None:
            return self.default
        low = self.minimum if minimum is None else minimum
        high = self.maximum if maximum is None else maximum
        if self.kind == "integer":
            return self._in_range(parse_int(self.name, raw), low, high)
        if self.kind == "number":
            return self._in_range(parse_number(self.name, raw), low, high)
        if self.kind == "boolean":
            return parse_bool(self.name, raw)
        if self.choices and raw not in self.choices:
            raise bad_request(f"{self.name}={raw[:64]!r}: use {' or '.join(self.choices)}")
        return raw

    def _in_range(self, value, low, high):
        too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
        if too_low or (high is not None and value > high):
            shown = value if isinstance(value, int) else f"{value:g}"
            if low is None or high is None:
                bound = f"at least {low:g}" if low is not None else f"at most {high:g}"
                raise bad_request(f"{self.name} must be {bound} (got {shown})")
            span = (
                f"(more than {low:g}, at most {high:g})"
                if self.exclusive_minimum
                else f"{low:g}..{high:g}"
            )
            raise bad_request(f"{self.name}={shown} is out of range {span}")
        return value


def parse_int(name: str, raw: str) -> int:
    try:
        return int(raw, 10)
    except ValueError:
        raise bad_request(f"{name}={raw!r} is not an integer") from None


def parse_number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise bad_request(f"{name}={raw!r} is not a finite number")
    return value


def parse_bool(name: str, raw: str) -> bool:
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise bad_request(f"{name}={raw!r} is not a boolean: use true or false")


def parse_class_ids(name: str, raw: str, num_classes: int) -> list[int]:
    """`805,409` -> [805, 409], each a class id of a model with num_classes classes."""
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


def multipart_schema(parts: tuple[Part, ...]) -> dict:
    """The OpenAPI schema of a multipart body made of `parts`."""
    return {
        "type": "object",
        "required": [part.name for part in parts if part.required],
        "properties": {part.name: part.schema() for part in parts},
    }


# -- the parts of API.md ----------------------------------------------------------

IMAGE = Part("image", "file", "PNG, JPEG or WebP.", required=True)
MASK = Part(
    "mask",
    "file",
    "PNG of the image's size; non-zero pixels (any channel or alpha) are removed. "
    "A mask that removes nothing is answered like any other: the image comes back "
    "unchanged (and, for edit, classified as it is).",
    required=True,
)
BACKEND = Part("backend", "string", "A backend name from /api/v1/info; default the configured one.")
TOP_K = Part("top_k", "integer", "How many of the most probable classes.", 5, 1, 1000)
CLASSES = Part(
    "classes",
    "string",
    "Comma-separated class ids returned whatever their rank (the pinned classes).",
)
CAM = Part(
    "cam",
    "string",
    "`top` (a CAM per top-k class), `none` (default) or comma-separated class ids.",
    "none",
)
MODEL = Part(
    "model",
    "string",
    "A model name from /api/v1/models; default the default model. Class ids, top_k and "
    "labels are that model's.",
)
COMPARE = Part(
    "compare",
    "string",
    "A second model from /api/v1/models: the same image is classified by it too, in "
    "parallel, with the same top_k (at most its class count), classes and cam; its answer "
    "comes under `compare`. A compare model without CAMs answers with no CAMs and says why.",
)
CAM_SIZE = Part(
    "cam_size",
    "string",
    "`capped` (default): CAM PNGs at most IC_CAM_MAX_SIDE (512) px on their longer side, "
    "to be scaled up to the image's width x height; `full`: at the image's own size.",
    "capped",
    choices=("capped", "full"),
)
TARGET = Part("target", "integer", "Class id to explain; default the top-1.", minimum=0)
WINDOW = Part(
    "window",
    "integer",
    "Window side in px of the request image; default about a fifth of the shorter side "
    "(48 on 227 px).",
    minimum=1,
)
STRIDE = Part(
    "stride",
    "integer",
    "Window step in px of the request image, at most the window; default a third of it.",
    minimum=1,
)
COMPETITORS = Part("competitors", "integer", "How many competitor maps.", 3, 0, 10)
FIX = Part("fix", "boolean", "Add the fix-it answer.", False)
FIX_FRACTION = Part(
    "fix_fraction",
    "number",
    "At most this share of the image is removed by fix-it.",
    0.05,
    0,
    0.2,
    exclusive_minimum=True,
)
FAITHFULNESS = Part(
    "faithfulness", "boolean", "Add the faithfulness numbers for this image.", False
)

CLICK_X = Part(
    "x", "integer", "A click on the object: its column in pixels of the image.", minimum=0
)
CLICK_Y = Part("y", "integer", "A click on the object: its row in pixels of the image.", minimum=0)
BOX = Part(
    "box",
    "string",
    "A box round the object instead of a click: `x,y,width,height` in pixels of the image.",
)
GROW = Part(
    "grow", "integer", "Grow (positive) or shrink (negative) the region by pixels.", 0, -100, 100
)
ITERATIONS = Part("iterations", "integer", "GrabCut rounds.", 4, 1, 10)

CLASSIFY_PARTS = (IMAGE, TOP_K, CLASSES, CAM, MODEL, COMPARE, CAM_SIZE)
ANSWER = Part(
    "answer",
    "string",
    "`image` (default): the whole picture in `image`; `region`: only the removed pixels' "
    "bounding box, filled, in `region` ({x, y, width, height, png}; null when nothing was "
    "removed), for a client that keeps its own copy of the picture.",
    "image",
)

INPAINT_PARTS = (IMAGE, MASK, BACKEND, ANSWER)
EDIT_PARTS = (IMAGE, MASK, BACKEND, ANSWER, TOP_K, CLASSES, CAM, MODEL, COMPARE, CAM_SIZE)
EXPLAIN_PARTS = (
    IMAGE,
    MODEL,
    TARGET,
    BACKEND,
    WINDOW,
    STRIDE,
    COMPETITORS,
    FIX,
    FIX_FRACTION,
    FAITHFULNESS,
    MODEL,
)
SEGMENT_PARTS = (IMAGE, CLICK_X, CLICK_Y, BOX, GROW, ITERATIONS)
