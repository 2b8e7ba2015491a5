"""Incremental inference, the pieces around the engine: image edits to
network-input patches (every changed input value inside the patch, bit for
bit), and the base-activation cache."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from common.errors import InvalidInput
from services.classifier.cards import InputSpec
from services.classifier.incremental import ActivationCache, edit_patches
from services.classifier.preprocess import Preprocessor
from tests.support.served_models import SQUEEZENET, builtin_card

SQUEEZENET_INPUT = Preprocessor(builtin_card(SQUEEZENET).input)


def to_tensor(rgb: np.ndarray) -> np.ndarray:
    return SQUEEZENET_INPUT(rgb)


def card_input(**fields) -> Preprocessor:
    """A card's preprocessing: 0..255 values as they are, RGB, channels first."""
    spec = InputSpec("NCHW", "RGB", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), **fields)
    return Preprocessor(spec)


class Entry:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def test_activation_cache_evicts_least_recently_used_by_bytes():
    cache = ActivationCache(max_bytes=100)
    cache.put("a", Entry(40))
    cache.put("b", Entry(40))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", Entry(40))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.nbytes == 80
    cache.put("huge", Entry(101))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2


def test_calls_for_one_base_at_once_compute_it_once():
    """The explainer sends a base's windows in several calls, some at once: the
    base is computed by one of them and the others wait for it."""
    cache = ActivationCache(max_bytes=100)
    release, made = threading.Event(), []

    def make() -> Entry:
        made.append(threading.current_thread().name)
        release.wait(30)
        return Entry(10)

    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(cache.get_or_make("base", make)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    while not made:  # one call is computing it: the others come and wait
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(made) == 1 and len(answers) == 4
    assert len({id(entry) for entry, _ in answers}) == 1
    assert sorted(was_made for _, was_made in answers) == [False, False, False, True]
    assert (cache.misses, cache.hits) == (1, 3)


def test_a_failed_computation_is_not_cached_and_the_next_call_tries_again():
    cache = ActivationCache(max_bytes=100)

    def fail() -> Entry:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_make("base", fail)
    entry, made = cache.get_or_make("base", lambda: Entry(10))
    assert made and cache.get("base") is entry
    _, made = cache.get_or_make("huge", lambda: Entry(101))
    assert made and cache.get("huge") is None  # answered, but not kept


@pytest.mark.parametrize(
    ("image_size", "preprocessor", "resized", "crop"),
    [
        ((227, 227), SQUEEZENET_INPUT, (256, 256), None),  # enlarging, OpenCV
        ((640, 480), SQUEEZENET_INPUT, (341, 256), None),  # shrinking, antialiased
        ((300, 200), card_input(size=(224, 224)), (224, 224), None),  # one axis each way
        ((500, 400), card_input(short_side=224, crop=(224, 224)), (280, 224), (28, 0, 224, 224)),
        ((200, 500), card_input(size=(256, 256), crop=(224, 200)), (256, 256), (28, 16, 200, 224)),
    ],
    ids=["enlarge", "shrink", "squash", "centre-crop", "squash-and-crop"],
)
def test_patches_hold_every_changed_input_value_bit_for_bit(
    image_size, preprocessor, resized, crop
):
    width, height = image_size
    geometry = preprocessor.geometry(width, height)
    assert (geometry.resized_width, geometry.resized_height) == resized
    assert geometry.crop == (crop or (0, 0, *resized))
    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    base = preprocessor(rgb)
    edits = []
    for _ in range(40):
        w, h = int(rng.integers(1, width // 2)), int(rng.integers(1, height // 2))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        edits.append((x, y, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    edits.append((0, 0, rng.integers(0, 256, (height, 1, 3), dtype=np.uint8)))
    patches = edit_patches(rgb, edits, geometry, preprocessor)
    for (x, y, pixels), patch in zip(edits, patches, strict=True):
        edited = rgb.copy()
        edited[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
        expected = preprocessor(edited)[0]
        rebuilt = base[0].copy()
        if patch is not None:
            top, left, values = patch
            rebuilt[:, top : top + values.shape[1], left : left + values.shape[2]] = values
        assert np.array_equal(rebuilt, expected)
    # The crop hides the left column: that edit changes nothing the network sees.
    assert (patches[-1] is None) == (crop is not None)


def test_bad_edits_are_refused():
    rgb = np.zeros((20, 30, 3), np.uint8)
    geometry = SQUEEZENET_INPUT.geometry(30, 20)
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
        edit_patches(rgb, [], SQUEEZENET_INPUT.geometry(40, 20), to_tensor)
    nhwc = Preprocessor(dataclasses.replace(SQUEEZENET_INPUT.spec, layout="NHWC"))
    with pytest.raises(ValueError, match="channels first"):
        edit_patches(rgb, [(0, 0, np.ones((2, 2, 3), np.uint8))], geometry, nhwc)
