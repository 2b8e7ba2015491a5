"""A model card's input preprocessing (notes/MODEL_CARDS.md), written out plainly
for tests and benchmarks that check a model against its card independently of
the classifier's own implementation."""

from __future__ import annotations

import numpy as np
from PIL import Image


def card_input(rgb: np.ndarray, spec: dict) -> np.ndarray:
    """HxWx3 uint8 RGB -> [1, ...] float32 network input, as the card's `input` says."""
    image = Image.fromarray(rgb)
    if "size" in spec:
        target = (spec["size"][1], spec["size"][0])
    else:
        side, (w, h) = spec["short_side"], image.size
        target = (side, round(h * side / w)) if w <= h else (round(w * side / h), side)
    # Pillow's bilinear widens its support when shrinking: antialiased.
    image = image.resize(target, Image.Resampling.BILINEAR)
    if spec.get("crop"):
        crop_h, crop_w = spec["crop"]
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    x = np.asarray(image, dtype=np.float32) * np.float32(spec["scale"])
    if spec["color"] == "BGR":
        x = x[..., ::-1]
    x = (x - np.float32(spec["mean"])) / np.float32(spec["std"])
    return (x.transpose(2, 0, 1) if spec["layout"] == "NCHW" else x)[None].astype(np.float32)
