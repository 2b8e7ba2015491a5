"""Image edits -> network-input patches for the incremental engine.

An edit replaces a rectangle of the request image with new pixels. In the
network input it changes the rectangle mapped through the resize, widened by
the resize filter's support (a destination pixel blends the source pixels
within `support` of its centre, in source pixels when enlarging and scaled by
the shrink factor when shrinking, as antialiased resizing does), then shifted
by the crop; an edit outside the crop changes nothing. Where the image goes is
the card's `Geometry` (services/classifier/preprocess.py). The patch's values
are taken from the real preprocessing of the edited image, so they are
bit-identical to what full inference sees.

The engine works on channels-first ([1, C, H, W]) network inputs: a card whose
layout is NHWC never gets here (the classifier runs its edits in full).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from common.errors import InvalidInput
from services.classifier.preprocess import Geometry

# An edit: (x, y, new pixels [h, w, 3] uint8) in the request image's pixels, or
# anything with those as attributes x, y and rgb (services.classifier.edits.ImageEdit).
ImageEdit = tuple[int, int, np.ndarray] | Any
Preprocess = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 -> float32 [1, C, H, W]
Patch = tuple[int, int, np.ndarray] | None

# Bilinear resizing (preprocess.resize, both libraries): one source pixel each
# side of a destination pixel's centre, times the shrink factor when shrinking.
BILINEAR_SUPPORT = 1.0


def network_rect(
    geometry: Geometry, x: int, y: int, width: int, height: int, support: float = BILINEAR_SUPPORT
) -> tuple[int, int, int, int] | None:
    """The network-input range (y0, y1, x0, x1) an edit of this image rectangle
    can change; None when it changes nothing the network sees."""
    rows = _resized_range(y, y + height, geometry.height, geometry.resized_height, support)
    cols = _resized_range(x, x + width, geometry.width, geometry.resized_width, support)
    left, top, crop_width, crop_height = geometry.crop
    rows = (max(rows[0] - top, 0), min(rows[1] - top, crop_height))
    cols = (max(cols[0] - left, 0), min(cols[1] - left, crop_width))
    if rows[0] >= rows[1] or cols[0] >= cols[1]:
        return None
    return rows[0], rows[1], cols[0], cols[1]


def _resized_range(
    start: int, stop: int, source: int, target: int, support: float
) -> tuple[int, int]:
    """Destination pixels [lo, hi) whose filter window touches source pixels [start, stop).

    Destination pixel d is centred at c = (d + 0.5) * scale in source pixels and
    blends the source pixels i whose centres i + 0.5 lie within `reach` of c.
    One pixel more on each side absorbs the libraries' own rounding of where a
    window starts and ends."""
    if source == target:
        return start, stop
    scale = source / target
    reach = support * max(scale, 1.0)
    lo = math.ceil((start + 0.5 - reach) / scale - 0.5) - 1
    hi = math.floor((stop - 0.5 + reach) / scale - 0.5) + 1
    return max(lo, 0), min(hi + 1, target)


def edit_patches(
    base_rgb: np.ndarray,
    edits: Sequence[ImageEdit],
    geometry: Geometry,
    preprocess: Preprocess,
) -> list[Patch]:
    """One patch (y, x, float32 [C, h, w]) per edit for IncrementalEngine.run,
    None where an edit changes nothing the network sees. `geometry` is the
    card's for this image (Preprocessor.geometry) and `preprocess` its
    preprocessing (a Preprocessor, or any callable giving [1, C, H, W])."""
    height, width = base_rgb.shape[:2]
    if (width, height) != (geometry.width, geometry.height):
        raise InvalidInput(
            f"the image is {width}x{height} but the geometry is for "
            f"{geometry.width}x{geometry.height}"
        )
    network_width, network_height = geometry.network_size
    edited = base_rgb.copy()
    patches: list[Patch] = []
    for index, edit in enumerate(edits):
        x, y, pixels = edit if isinstance(edit, tuple) else (edit.x, edit.y, edit.rgb)
        _check_edit(index, x, y, pixels, width, height)
        rows, cols = pixels.shape[:2]
        rect = network_rect(geometry, x, y, cols, rows)
        if rect is None:
            patches.append(None)
            continue
        edited[y : y + rows, x : x + cols] = pixels
        tensor = preprocess(edited)
        edited[y : y + rows, x : x + cols] = base_rgb[y : y + rows, x : x + cols]
        if tensor.ndim != 4 or tensor.shape[2:] != (network_height, network_width):
            raise ValueError(
                f"preprocess gave {list(tensor.shape)}; the geometry says [1, C, "
                f"{network_height}, {network_width}] (channels first)"
            )
        y0, y1, x0, x1 = rect
        patches.append((y0, x0, np.ascontiguousarray(tensor[0, :, y0:y1, x0:x1])))
    return patches


def _check_edit(index: int, x: int, y: int, pixels: np.ndarray, width: int, height: int) -> None:
    if not all(isinstance(v, int | np.integer) for v in (x, y)):
        raise InvalidInput(f"edit {index}: x and y must be integers")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise InvalidInput(f"edit {index}: the new pixels must be 8-bit RGB")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InvalidInput(f"edit {index}: the new pixels must be [height, width, 3] RGB")
    rows, cols = pixels.shape[:2]
    if rows < 1 or cols < 1:
        raise InvalidInput(f"edit {index} is empty ({cols}x{rows})")
    if x < 0 or y < 0 or x + cols > width or y + rows > height:
        raise InvalidInput(
            f"edit {index} ({cols}x{rows} at x={x}, y={y}) reaches outside the "
            f"{width}x{height} image"
        )
