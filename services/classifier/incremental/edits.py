"""Image edits -> network-input patches for the incremental engine.

An edit replaces a rectangle of the request image with new pixels. In the
network input it changes the rectangle mapped through the resize, widened by
the resize filter's support (a destination pixel blends the source pixels
within `support` of its centre, in source pixels when enlarging and scaled by
the shrink factor when shrinking, as antialiased resizing does), then shifted
by the crop; an edit outside the crop changes nothing. The patch's values are
taken from the real preprocessing of the edited image, so they are
bit-identical to what full inference would see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import InvalidInput

# An edit: (x, y, new pixels [h, w, 3] uint8) in the request image's pixels, or
# anything with those as attributes x, y and rgb (services.classifier.edits.ImageEdit).
ImageEdit = tuple[int, int, np.ndarray] | Any
Preprocess = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 -> float32 [1, C, H, W]

BILINEAR_SUPPORT = 1.0


@dataclass(frozen=True)
class InputGeometry:
    """Where the request image's pixels land in the network input: resized from
    `image_size` to `resized_size` ((width, height) both) with a filter of
    `support` source pixels, then the window `crop` (left, top, width, height)
    of the resized image is the network input (None: all of it)."""

    image_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None
    support: float = BILINEAR_SUPPORT

    @classmethod
    def centre_crop(
        cls,
        image_size: tuple[int, int],
        resized_size: tuple[int, int],
        crop_size: tuple[int, int],
        support: float = BILINEAR_SUPPORT,
    ) -> InputGeometry:
        left = (resized_size[0] - crop_size[0]) // 2
        top = (resized_size[1] - crop_size[1]) // 2
        return cls(image_size, resized_size, (left, top, *crop_size), support)

    @property
    def network_size(self) -> tuple[int, int]:
        return (self.crop[2], self.crop[3]) if self.crop else self.resized_size

    def network_rect(
        self, x: int, y: int, width: int, height: int
    ) -> tuple[int, int, int, int] | None:
        """The network-input range (y0, y1, x0, x1) an edit of this image
        rectangle can change; None when it changes nothing the network sees."""
        rows = _resized_range(y, y + height, self.image_size[1], self.resized_size[1], self.support)
        cols = _resized_range(x, x + width, self.image_size[0], self.resized_size[0], self.support)
        if self.crop is not None:
            left, top, crop_width, crop_height = self.crop
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
    geometry: InputGeometry,
    preprocess: Preprocess,
) -> list[tuple[int, int, np.ndarray] | None]:
    """One patch (y, x, float32 [C, h, w]) per edit for IncrementalEngine.run,
    None where an edit changes nothing the network sees."""
    height, width = base_rgb.shape[:2]
    if (width, height) != geometry.image_size:
        raise InvalidInput(
            f"the image is {width}x{height} but the geometry is for "
            f"{geometry.image_size[0]}x{geometry.image_size[1]}"
        )
    edited = base_rgb.copy()
    patches: list[tuple[int, int, np.ndarray] | None] = []
    for index, edit in enumerate(edits):
        x, y, pixels = edit if isinstance(edit, tuple) else (edit.x, edit.y, edit.rgb)
        _check_edit(index, x, y, pixels, width, height)
        rows, cols = pixels.shape[:2]
        rect = geometry.network_rect(x, y, cols, rows)
        if rect is None:
            patches.append(None)
            continue
        edited[y : y + rows, x : x + cols] = pixels
        tensor = preprocess(edited)
        edited[y : y + rows, x : x + cols] = base_rgb[y : y + rows, x : x + cols]
        expected = (geometry.network_size[1], geometry.network_size[0])
        if tensor.ndim != 4 or tensor.shape[2:] != expected:
            raise ValueError(f"preprocess gave {tensor.shape}; the geometry says {expected}")
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
