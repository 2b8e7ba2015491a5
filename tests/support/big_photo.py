"""A 12 MP photo for the big-photo tests and benchmark, made on the spot.

The gallery's photos are 227 px; users send phone photos of 4000x3000. This
enlarges a gallery photo to that size and adds fine grain (sigma 3), so the
JPEG weighs what a real one does (about 1 MB at quality 80) and PNGs of it do
not compress unrealistically well. Deterministic: the same bytes every time.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

BIG_SIZE = (4000, 3000)  # width, height


def big_photo_rgb(source: Path, size: tuple[int, int] = BIG_SIZE, seed: int = 0) -> np.ndarray:
    enlarged = Image.open(source).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    grain = np.random.default_rng(seed).normal(0.0, 3.0, size=(size[1], size[0], 1))
    return np.clip(np.asarray(enlarged, np.float32) + grain, 0, 255).astype(np.uint8)


def big_photo_jpeg(source: Path, size: tuple[int, int] = BIG_SIZE, quality: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(big_photo_rgb(source, size)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def stroke_mask_png(size: tuple[int, int] = BIG_SIZE, box=(1800, 1500, 400, 100)) -> bytes:
    """A mask PNG of `size` removing the rectangle box = (x, y, width, height): a
    400x100 px stroke in the middle of a 12 MP photo by default."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    x, y, width, height = box
    mask[y : y + height, x : x + width] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()
