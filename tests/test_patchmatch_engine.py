"""The PatchMatch engine through its Python binding (services/patchmatch/native.py),
on the gallery photos: what changes, what a fill looks like, determinism,
edge-case masks, bad input, threads, cancellation and deadlines."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from common.errors import EngineUnavailable, InvalidInput, TooLarge
from services.patchmatch import native
from services.patchmatch.native import (
    PARAMS,
    Cancelled,
    DeadlineExceeded,
    patchmatch_inpaint,
    validate_params,
)

MAGENTA = np.array([255, 0, 255], dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def library_built():
    available, reason = native.library_status()
    if not available:
        pytest.fail(reason)


def disk(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def with_magenta_hole(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    painted = image.copy()
    painted[mask] = MAGENTA
    return painted


def assert_only_mask_filled(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> None:
    assert after.shape == before.shape and after.dtype == np.uint8
    assert np.array_equal(after[~mask], before[~mask]), "pixels outside the mask changed"
    assert not np.all(after[mask] == MAGENTA, axis=-1).any(), "hole pixels left unfilled"


def big_job() -> tuple[np.ndarray, np.ndarray, dict]:
    """A fill that takes seconds: 1024x1024 noise, a 640x640 hole, many rounds."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    mask = np.zeros((1024, 1024), dtype=bool)
    mask[192:832, 192:832] = True
    return image, mask, {"em_iterations": 20, "pm_iterations": 10}


def test_only_masked_pixels_change(photo_rgb):
    image = photo_rgb("soccer")
    mask = disk(image.shape[:2], 113, 113, 40)
    painted = with_magenta_hole(image, mask)
    out = patchmatch_inpaint(painted, mask, seed=3)
    assert_only_mask_filled(painted, out, mask)
    assert np.array_equal(painted, with_magenta_hole(image, mask)), "the input was modified"


@pytest.mark.parametrize(("photo", "cx", "cy"), [("lighthouse", 50, 50), ("beach", 60, 45)])
def test_hole_in_the_sky_is_filled_with_sky(photo_rgb, photo, cx, cy):
    image = photo_rgb(photo)
    mask = disk(image.shape[:2], cx, cy, 18)
    ring = disk(image.shape[:2], cx, cy, 26) & ~mask
    out = patchmatch_inpaint(with_magenta_hole(image, mask), mask, seed=1)
    fill = out[mask].astype(float)
    sky = image[ring].astype(float).mean(axis=0)
    # every filled pixel is blue like the sky around it, none is a stray colour
    assert (fill[:, 2] > fill[:, 0] + 30).all()
    assert np.abs(fill.mean(axis=0) - sky).max() < 12
    assert np.abs(fill - sky).max() < 60
    # and the fill is close to the sky that was really there
    assert np.abs(fill - image[mask].astype(float)).mean() < 12


def test_hole_in_the_grass_is_filled_with_grass(photo_rgb):
    image = photo_rgb("soccer")
    mask = disk(image.shape[:2], 85, 200, 18)
    out = patchmatch_inpaint(with_magenta_hole(image, mask), mask, seed=2)
    fill = out[mask].astype(int)
    green = (fill[:, 1] > fill[:, 0] + 10) & (fill[:, 1] > fill[:, 2] + 10)
    assert green.all()
    # grass has texture: the fill is not one flat colour
    assert fill[:, 1].std() > 3


def test_same_seed_same_output_other_seed_still_valid(photo_rgb):
    image = photo_rgb("beach")
    mask = disk(image.shape[:2], 120, 150, 30)
    first = patchmatch_inpaint(image, mask, seed=11)
    second = patchmatch_inpaint(image, mask, seed=11)
    assert np.array_equal(first, second)
    other = patchmatch_inpaint(with_magenta_hole(image, mask), mask, seed=12)
    assert_only_mask_filled(with_magenta_hole(image, mask), other, mask)


@pytest.mark.parametrize(
    "box",
    [
        (slice(0, 30), slice(0, 40)),  # top-left corner
        (slice(None), slice(200, None)),  # the whole right edge
        (slice(210, None), slice(None)),  # the whole bottom edge
        (slice(100, 120), slice(0, 2)),  # a sliver on the left edge
    ],
)
def test_masks_touching_the_borders(photo_rgb, box):
    image = photo_rgb("hockey")
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[box] = True
    painted = with_magenta_hole(image, mask)
    assert_only_mask_filled(painted, patchmatch_inpaint(painted, mask), mask)


@pytest.mark.parametrize("where", [(113, 113), (0, 0), (226, 226)])
def test_one_pixel_mask(photo_rgb, where):
    image = photo_rgb("bank")
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[where] = True
    painted = with_magenta_hole(image, mask)
    assert_only_mask_filled(painted, patchmatch_inpaint(painted, mask), mask)


def test_empty_mask_returns_the_image_unchanged(photo_rgb):
    image = photo_rgb("skiing")
    out = patchmatch_inpaint(image, np.zeros(image.shape[:2], dtype=bool))
    assert np.array_equal(out, image)
    assert out is not image


def test_uint8_mask_any_nonzero_value_is_a_hole(photo_rgb):
    image = photo_rgb("skiing")
    mask = np.zeros(image.shape[:2], dtype=np.uint8)
    mask[50:70, 50:90] = 7
    painted = with_magenta_hole(image, mask != 0)
    assert_only_mask_filled(painted, patchmatch_inpaint(painted, mask), mask != 0)


def test_full_mask_is_refused(photo_rgb):
    image = photo_rgb("baseball")
    with pytest.raises(InvalidInput, match="nothing to sample from"):
        patchmatch_inpaint(image, np.ones(image.shape[:2], dtype=bool))


@pytest.mark.parametrize(
    ("image", "mask", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), np.zeros((0, 10), bool), "zero size"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), bool), "mask is 11x10"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 1), bool), "HxW array"),
        (np.zeros((10, 10), np.uint8), np.zeros((10, 10), bool), "HxWx3"),
        (np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10), bool), "HxWx3"),
        (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), bool), "uint8"),
    ],
)
def test_bad_shapes_are_refused(image, mask, message):
    with pytest.raises(InvalidInput, match=message):
        patchmatch_inpaint(image, mask)


def test_too_large_image_is_refused():
    image = np.zeros((1, 16385, 3), np.uint8)
    mask = np.zeros((1, 16385), bool)
    mask[0, 5] = True
    with pytest.raises(TooLarge, match="too large"):
        patchmatch_inpaint(image, mask)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 8}, "patch_size must be an odd integer from 3 to 21"),
        ({"patch_size": 23}, "patch_size"),
        ({"em_iterations": 0}, "em_iterations"),
        ({"pm_iterations": 2.5}, "pm_iterations"),
        ({"context": float("nan")}, "context"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_refused(photo_rgb, kwargs, message):
    image = photo_rgb("soccer")
    mask = disk(image.shape[:2], 100, 100, 10)
    with pytest.raises(InvalidInput, match=message):
        patchmatch_inpaint(image, mask, **kwargs)


def test_params_table_and_validation():
    names = [p.name for p in PARAMS]
    assert names == ["patch_size", "em_iterations", "pm_iterations", "context"]
    for p in PARAMS:
        assert p.minimum <= p.default <= p.maximum and p.description
    assert validate_params({}) == {p.name: p.default for p in PARAMS}
    assert validate_params({"patch_size": 7.0})["patch_size"] == 7
    with pytest.raises(InvalidInput, match=r"unknown parameter.*radius"):
        validate_params({"radius": 3})


def test_concurrent_threads_match_serial_calls(photo_rgb):
    jobs = [
        (photo_rgb(name), disk((227, 227), 90 + 10 * k, 120, 25), k)
        for k, name in enumerate(["lighthouse", "beach", "sailboat", "hockey2"])
    ]
    serial = [patchmatch_inpaint(image, mask, seed=seed) for image, mask, seed in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: patchmatch_inpaint(job[0], job[1], seed=job[2]), jobs))
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a, b)


def test_engine_runs_without_holding_the_gil():
    """While one thread is inside the C call, Python code in another runs."""
    image, mask, params = big_job()
    cancel = threading.Event()
    entered = threading.Event()
    outcome: list[BaseException] = []

    def work() -> None:
        entered.set()
        try:
            patchmatch_inpaint(image, mask, cancel=cancel, **params)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    entered.wait()
    time.sleep(0.3)  # with the GIL held, this would only return after the fill
    still_running = worker.is_alive()
    cancel.set()
    worker.join()
    assert still_running
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)


def test_cancel_event_stops_the_engine():
    image, mask, params = big_job()
    cancel = threading.Event()
    timer = threading.Timer(0.1, cancel.set)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            patchmatch_inpaint(image, mask, cancel=cancel, **params)
    finally:
        timer.cancel()
    with pytest.raises(Cancelled, match="before it started"):
        patchmatch_inpaint(image, mask, cancel=cancel)


def test_timeout_stops_the_engine():
    image, mask, params = big_job()
    with pytest.raises(DeadlineExceeded):
        patchmatch_inpaint(image, mask, timeout_s=0.05, **params)
    with pytest.raises(DeadlineExceeded):
        patchmatch_inpaint(image, mask, timeout_s=0)


def test_a_timeout_long_enough_changes_nothing(photo_rgb):
    image = photo_rgb("soccer")
    mask = disk(image.shape[:2], 100, 100, 20)
    assert np.array_equal(
        patchmatch_inpaint(image, mask, seed=5, timeout_s=60),
        patchmatch_inpaint(image, mask, seed=5),
    )


def test_missing_library_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_library", None)
    monkeypatch.setattr(native, "LIBRARY_PATH", tmp_path / "libpatchmatch.so")
    available, reason = native.library_status()
    assert not available and "make native" in reason
    with pytest.raises(EngineUnavailable, match="run `make native`"):
        patchmatch_inpaint(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), bool))
