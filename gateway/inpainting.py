"""The inpaint half of /inpaint and /edit: send the backend only what it needs.

The gateway owns the request's decoded image. It sends the chosen engine the
part round the hole that the engine reads (its reach, from GetInfo: a band of
8 px for Telea, the hole box and as much again for PatchMatch, the whole image
for the engines that read everything), and takes back the filled pixels of
the hole's bounding box. For the page's small working copies this changes
little; for a 12 MP photo it is the difference between moving 36 MB twice and
moving a few hundred KB. Fills are bit-identical either way (each engine's
reach is tested).

An empty mask removes nothing: the engine is asked about one pixel, which it
returns unchanged, so the answer still names the backend that would work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask import current_app

from common.errors import InvalidInput
from common.images import ImageLimits, decode_image, raw_image, raw_mask
from gateway.clients import call_metadata, clients
from gateway.errors import ApiError
from gateway.observability import BACKEND_FALLBACKS
from ic.v1 import inpainter_pb2

# Images coming back from our own services: their size is checked below.
_NO_LIMITS = ImageLimits(max_side=1 << 30, max_pixels=1 << 62)


@dataclass(frozen=True)
class Box:
    """Pixels x0 <= u < x1, y0 <= v < y1 of the request image."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def json(self) -> dict:
        return {"x": self.x0, "y": self.y0, "width": self.width, "height": self.height}


@dataclass
class Inpainted:
    """What the backend did: who did it, and the filled pixels of the hole's box."""

    engine: str
    fallback: bool
    served_by: str
    elapsed_ms: float
    # The removed pixels' bounding box (None when nothing was removed) and its
    # pixels after inpainting.
    box: Box | None
    pixels: np.ndarray

    def apply_to(self, rgb: np.ndarray) -> np.ndarray:
        """`rgb` (the request image) with the hole filled: changed in place when
        it can be, else a copy (a decoded file's pixels are read-only)."""
        if self.box is not None:
            if not rgb.flags.writeable:
                rgb = rgb.copy()
            rgb[self.box.y0 : self.box.y1, self.box.x0 : self.box.x1] = self.pixels
        return rgb


def mask_box(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def inpaint(rgb: np.ndarray, mask: np.ndarray, backend: str | None) -> Inpainted:
    """Fill the masked pixels on the requested backend or a fallback."""
    config = current_app.config["IC"]
    height, width = rgb.shape[:2]
    box = mask_box(mask)
    # Nothing removed: ask about one pixel, which comes back as it was.
    hole = box or Box(0, 0, 1, 1)
    registry = clients().backends
    metadata = call_metadata()
    sent: dict[str, Box] = {}

    def attempt(stub, engine: str):
        info = registry.engine(engine)
        x0, y0, x1, y1 = (
            info.region_to_send((hole.x0, hole.y0, hole.x1, hole.y1), width, height)
            if info is not None
            else (0, 0, width, height)
        )
        sent[engine] = Box(x0, y0, x1, y1)
        request = inpainter_pb2.InpaintRequest(
            image=raw_image(rgb[y0:y1, x0:x1]),
            mask=raw_mask(mask[y0:y1, x0:x1]),
            engine=engine,
        )
        return stub.Inpaint(request, timeout=config.inpaint_timeout_s, metadata=metadata)

    outcome = registry.call(backend, attempt)
    if outcome.fallback:
        BACKEND_FALLBACKS.labels(backend or "default", outcome.engine).inc()
    region = sent[outcome.engine]
    filled = answered_rgb(outcome.response.image, region)
    top, left = hole.y0 - region.y0, hole.x0 - region.x0
    pixels = filled[top : top + hole.height, left : left + hole.width]
    return Inpainted(
        engine=outcome.engine,
        fallback=outcome.fallback,
        served_by=outcome.response.served_by,
        elapsed_ms=outcome.response.elapsed_ms,
        box=box,
        pixels=np.ascontiguousarray(pixels),
    )


def answered_rgb(message, region: Box) -> np.ndarray:
    """The service's answer as an array of the size sent (raw by contract)."""
    try:
        filled = decode_image(message, _NO_LIMITS, what="inpainted image")
    except InvalidInput as exc:
        raise ApiError(502, "bad_gateway", f"the inpainting service answered: {exc}") from exc
    if filled.shape[:2] != (region.height, region.width):
        raise ApiError(
            502,
            "bad_gateway",
            f"the inpainting service answered a {filled.shape[1]}x{filled.shape[0]} image "
            f"for a {region.width}x{region.height} one",
        )
    return filled
