"""Incremental inference, the pieces around the engine: image edits to
network-input patches (every changed input value inside the patch, bit for
bit), and the base-activation cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from common.errors import InvalidInput
from services.classifier import preprocess
from services.classifier.incremental import ActivationCache, InputGeometry, edit_patches


def to_tensor(rgb: np.ndarray) -> np.ndarray:
    return preprocess.to_tensor([rgb])


def test_activation_cache_evicts_least_recently_used_by_bytes():
    class Entry:
        def __init__(self, nbytes):
            self.nbytes = nbytes

    cache = ActivationCache(max_bytes=100)
    cache.put("a", Entry(40))
    cache.put("b", Entry(40))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", Entry(40))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.nbytes == 80
    cache.put("huge", Entry(101))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2


def squash(size: tuple[int, int]):
    def run(rgb: np.ndarray) -> np.ndarray:
        image = Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, np.float32).transpose(2, 0, 1)[None] / 255

    return run


def centre_crop(resized: tuple[int, int], crop: tuple[int, int]):
    def run(rgb: np.ndarray) -> np.ndarray:
        image = np.asarray(Image.fromarray(rgb).resize(resized, Image.Resampling.BILINEAR))
        left, top = (resized[0] - crop[0]) // 2, (resized[1] - crop[1]) // 2
        window = image[top : top + crop[1], left : left + crop[0]]
        return np.ascontiguousarray(window.astype(np.float32).transpose(2, 0, 1)[None])

    return run


@pytest.mark.parametrize(
    ("image_size", "geometry", "run"),
    [
        ((227, 227), InputGeometry((227, 227), (256, 256)), to_tensor),  # enlarging, OpenCV
        ((640, 480), InputGeometry((640, 480), (341, 256)), to_tensor),  # shrinking, antialiased
        (
            (300, 200),
            InputGeometry((300, 200), (224, 224)),
            squash((224, 224)),
        ),  # one axis each way
        (
            (500, 400),
            InputGeometry.centre_crop((500, 400), (280, 224), (224, 224)),
            centre_crop((280, 224), (224, 224)),
        ),
    ],
    ids=["enlarge", "shrink", "squash", "centre-crop"],
)
def test_patches_hold_every_changed_input_value_bit_for_bit(image_size, geometry, run):
    rng = np.random.default_rng(11)
    width, height = image_size
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    base = run(rgb)
    edits = []
    for _ in range(40):
        w, h = int(rng.integers(1, width // 2)), int(rng.integers(1, height // 2))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        edits.append((x, y, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    edits.append((0, 0, rng.integers(0, 256, (height, 1, 3), dtype=np.uint8)))
    patches = edit_patches(rgb, edits, geometry, run)
    for (x, y, pixels), patch in zip(edits, patches, strict=True):
        edited = rgb.copy()
        edited[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
        expected = run(edited)[0]
        rebuilt = base[0].copy()
        if patch is not None:
            top, left, values = patch
            rebuilt[:, top : top + values.shape[1], left : left + values.shape[2]] = values
        assert np.array_equal(rebuilt, expected)
    # The crop hides the left column: that edit changes nothing the network sees.
    assert (patches[-1] is None) == (geometry.crop is not None)


def test_bad_edits_are_refused():
    rgb = np.zeros((20, 30, 3), np.uint8)
    geometry = InputGeometry((30, 20), (384, 256))
    cases = [
        (
            (25, 0, np.zeros((5, 10, 3), np.uint8)),
            "edit 0 (10x5 at x=25, y=0) reaches outside the 30x20 image",
        ),
        ((0, 0, np.zeros((5, 5), np.uint8)), "RGB"),
        ((0, 0, np.zeros((5, 5, 3), np.float32)), "8-bit RGB"),
        ((0, 0, np.zeros((0, 5, 3), np.uint8)), "empty"),
        ((0.5, 0, np.zeros((5, 5, 3), np.uint8)), "x and y must be integers"),
    ]
    for edit, message in cases:
        with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
            edit_patches(rgb, [edit], geometry, to_tensor)
    with pytest.raises(InvalidInput, match="the image is 30x20 but the geometry is for 40x20"):
        edit_patches(rgb, [], InputGeometry((40, 20), (512, 256)), to_tensor)
