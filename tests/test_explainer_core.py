"""Unit tests of the explainer's pure core: the grid and its coarse pass, the
resolutions it works at, the Laplace correction, weight of evidence,
window-averaged maps, masks and batches (no services)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import InvalidInput
from services.explainer import core, grid
from services.explainer.calls import MESSAGE_OVERHEAD_BYTES, PipelineSettings, split_batches


def coverage(rects, width: int, height: int) -> np.ndarray:
    covered = np.zeros((height, width), dtype=int)
    for x, y, w, h in rects:
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        covered[y : y + h, x : x + w] += 1
    return covered


def test_default_grid_of_a_227_px_photo_is_48_px_windows_16_px_apart():
    windows = grid.make_grid(227, 227)
    assert (windows.window, windows.stride) == (48, 16)
    assert windows.xs == (0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 179)
    assert windows.count == 169 == len(windows.rects())


@pytest.mark.parametrize(
    "width,height,window,stride",
    [
        (227, 227, None, None),
        (300, 200, None, None),
        (100, 37, 10, 7),
        (64, 64, 13, 13),
        (5, 9, 5, 1),
    ],
)
def test_windows_cover_every_pixel_and_stay_inside(width, height, window, stride):
    windows = grid.make_grid(width, height, window, stride)
    assert coverage(windows.rects(), width, height).min() >= 1
    # The last window of each axis is flush with the far border.
    assert windows.xs[-1] + windows.window == width
    assert windows.ys[-1] + windows.window == height


def test_default_window_is_about_a_fifth_of_the_shorter_side():
    assert grid.default_window(640, 480) == 96
    assert grid.default_window(1000, 500) == 96  # 100 -> 12.5 eighths -> 12
    assert grid.default_window(20, 20) == 8
    assert grid.default_stride(96) == 32


@pytest.mark.parametrize(
    "window,stride,max_windows,words",
    [
        (300, 16, None, "larger than the 227x227 image"),
        (48, 0, None, "stride must be at least 1"),
        (0, 16, None, "window must be at least 1"),
        (16, 17, None, "stride of 17 px is larger than the window"),
        (227, 16, None, "whole image"),
        (8, 1, 1000, "at most 1000 are allowed"),
    ],
)
def test_bad_grids_are_refused_with_a_clear_message(window, stride, max_windows, words):
    with pytest.raises(InvalidInput, match=words):
        grid.make_grid(227, 227, window, stride, max_windows)


def test_laplace_correction_keeps_zero_and_one_finite():
    n, k = core.LAPLACE_N, core.LAPLACE_K
    assert core.laplace_correct(0.0) == pytest.approx(1 / (n + k))
    assert core.laplace_correct(1.0) == pytest.approx((n + 1) / (n + k))
    odds = core.log2_odds(np.array([0.0, 1.0]))
    assert np.isfinite(odds).all()
    assert odds[0] == pytest.approx(-math.log2(n + k - 1))
    assert odds[1] == pytest.approx(math.log2((n + 1) / (k - 1)))
    # Away from the ends the correction is small (K/N of the odds).
    assert core.log2_odds(0.5) == pytest.approx(0.0, abs=0.01)
    assert core.log2_odds(0.8) == pytest.approx(2.0, abs=0.01)


def test_the_correction_follows_the_models_class_count():
    # A 5-class model's certain 0 is 1/(N+5), not 1/(N+1000): its odds barely move.
    assert core.laplace_correct(0.0, k=5) == pytest.approx(1 / (core.LAPLACE_N + 5))
    assert core.log2_odds(0.2, classes=5) == pytest.approx(-2.0, abs=1e-4)
    assert core.log2_odds(0.2, classes=5) != pytest.approx(core.log2_odds(0.2), abs=1e-4)


def test_weight_of_evidence_sign_and_size():
    p_original = np.array([0.5, 0.2])
    p_removed = np.array([[0.2, 0.5], [0.8, 0.2]])
    we = core.weight_of_evidence(p_original, p_removed)
    # Removing window 0 lowers p(class 0) from 1:1 to 1:4 odds: 2 bits of evidence for it.
    assert we[0, 0] == pytest.approx(2.0, abs=0.01)
    assert we[0, 1] == pytest.approx(-2.0, abs=0.01)
    assert we[1, 0] == pytest.approx(-2.0, abs=0.01)
    assert we[1, 1] == pytest.approx(0.0, abs=1e-9)


def test_maps_average_over_the_windows_covering_each_pixel():
    windows = grid.make_grid(6, 6, window=4, stride=2)  # windows at 0 and 2 on each axis
    assert windows.count == 4
    values = np.array([4.0, 0.0, 0.0, 0.0])  # only the top-left window
    averaged = core.window_mean_map(windows.rects(), values, 6, 6)
    assert averaged[0, 0] == 4.0  # covered by window 0 only
    assert averaged[2, 2] == 1.0  # covered by all four
    assert averaged[5, 5] == 0.0


def test_hinder_support_and_competitor_maps_from_probabilities():
    windows = grid.make_grid(6, 6, window=4, stride=2)
    p_original = np.array([0.5, 0.1])  # target, one competitor
    # window 0 hides the target's evidence, window 3 hides what stands in its way
    # and the competitor's evidence.
    p_windows = np.array([[0.2, 0.1], [0.5, 0.1], [0.5, 0.1], [0.8, 0.01]])
    maps = core.evidence_maps(windows.layout(), p_original, p_windows)
    assert maps.support[0, 0] == pytest.approx(2.0, abs=0.01)
    assert maps.support[5, 5] == 0.0
    assert maps.hinder[5, 5] == pytest.approx(2.0, abs=0.01)
    assert maps.hinder[0, 0] == 0.0
    assert len(maps.competitors) == 1
    assert maps.competitors[0][5, 5] > 3.0 and maps.competitors[0][0, 0] == 0.0
    for m in (maps.hinder, maps.support, *maps.competitors):
        assert m.min() >= 0


def test_gray8_scales_min_to_0_and_max_to_255():
    raw = np.array([[0.5, 1.0], [1.5, 2.5]])
    gray, low, high = core.to_gray8(raw)
    assert (low, high) == (0.5, 2.5)
    assert gray.dtype == np.uint8 and gray[0, 0] == 0 and gray[1, 1] == 255
    flat, _, _ = core.to_gray8(np.ones((3, 3)))
    assert not flat.any()


def test_strongest_region_mask_takes_whole_levels_within_the_budget():
    score = np.zeros((10, 10))
    score[0:2, 0:2] = 3.0  # 4 px
    score[5:8, 5:8] = 2.0  # 9 px
    score[9, :] = -1.0
    mask = core.strongest_region_mask(score, 0.10)
    assert mask.sum() == 4 and mask[0:2, 0:2].all()
    mask = core.strongest_region_mask(score, 0.20)
    assert mask.sum() == 13
    assert not core.strongest_region_mask(-np.abs(score), 0.5).any()
    # A single level larger than the budget is cut to the budget.
    assert core.strongest_region_mask(np.ones((10, 10)), 0.05).sum() == 5


def test_top_fraction_mask_has_exact_area_and_prefers_high_scores():
    score = np.arange(100, dtype=float).reshape(10, 10)
    mask = core.top_fraction_mask(score, 0.05)
    assert mask.sum() == 5 and mask.ravel()[95:].all()
    ties = core.top_fraction_mask(np.zeros((10, 10)), 0.2, seed=1)
    assert ties.sum() == 20


def test_random_block_map_is_constant_on_blocks():
    rand = core.random_block_map(50, 40, 16, seed=3)
    assert rand.shape == (40, 50)
    assert np.unique(rand[0:16, 0:16]).size == 1
    assert np.unique(rand).size == 3 * 4


# -- the coarse pass -------------------------------------------------------------


def test_the_coarse_pass_of_the_default_grid_is_25_of_its_own_169_windows():
    windows = grid.make_grid(227, 227)
    coarse = windows.coarse_indices()
    assert len(coarse) == 25
    rects = windows.rects()
    picked = [rects[i] for i in coarse]
    # Windows one window apart (48 px), and the far border's flush window kept.
    assert sorted({x for x, _, _, _ in picked}) == [0, 48, 96, 144, 179]
    assert sorted({y for _, y, _, _ in picked}) == [0, 48, 96, 144, 179]
    assert coverage(picked, 227, 227).min() >= 1


@pytest.mark.parametrize(
    "width,height,window,stride",
    [(227, 227, None, None), (300, 200, 40, 8), (100, 37, 10, 3), (512, 384, 96, 32)],
)
def test_coarse_windows_are_grid_windows_that_cover_every_pixel(width, height, window, stride):
    windows = grid.make_grid(width, height, window, stride)
    coarse = windows.coarse_indices()
    assert len(set(coarse)) == len(coarse) < windows.count / 3
    assert coverage([windows.rects()[i] for i in coarse], width, height).min() >= 1


def test_a_grid_with_stride_above_half_the_window_is_its_own_coarse_pass():
    windows = grid.make_grid(227, 227, 48, 30)
    assert windows.coarse_indices() == list(range(windows.count))


# -- the resolutions -------------------------------------------------------------


def test_a_photo_no_larger_than_the_model_input_is_its_own_working_copy():
    assert grid.working_size(227, 227, 256) == (227, 227)
    assert grid.working_size(256, 900, 256) == (256, 900)
    # Larger: shrunk to the input's short side, rounded as the classifier does.
    assert grid.working_size(4000, 3000, 256) == (341, 256)
    assert grid.working_size(3000, 4000, 256) == (256, 341)
    assert grid.working_size(4000, 3000, 0) == (4000, 3000)  # a model without one


def test_maps_are_the_request_size_capped_to_a_longest_side():
    assert grid.map_size(227, 227, 512) == (227, 227)
    assert grid.map_size(4000, 3000, 512) == (512, 384)
    assert grid.map_size(3000, 4000, 512) == (384, 512)


def test_rectangles_on_a_smaller_picture_still_cover_it_without_gaps():
    windows = grid.make_grid(4000, 3000)  # 600 px windows, 200 px stride
    rects = windows.rects()
    assert grid.rects_at(rects, (4000, 3000), (4000, 3000)) == rects
    on_map = grid.rects_at(rects, (4000, 3000), (512, 384))
    assert coverage(on_map, 512, 384).min() >= 1
    assert on_map[0] == (0, 0, 77, 77)  # 600 px * 0.128
    working = grid.covering_rects(rects, (4000, 3000), (341, 256))
    assert coverage(working, 341, 256).min() >= 1
    # Grown outwards to whole pixels: each covers all of its window.
    for (x, y, w, h), (wx, wy, ww, wh) in zip(rects, working, strict=True):
        assert wx <= x * 341 / 4000 and wx + ww >= (x + w) * 341 / 4000
        assert wy <= y * 256 / 3000 and wy + wh >= (y + h) * 256 / 3000


def test_a_window_smaller_than_a_working_pixel_still_removes_one():
    rects = [(10, 10, 3, 3)]
    assert grid.covering_rects(rects, (4000, 3000), (341, 256)) == [(0, 0, 2, 2)]


# -- batches -------------------------------------------------------------------


def test_batches_are_bounded_by_count_and_by_bytes():
    assert split_batches([10] * 5, max_count=2, max_bytes=10**9) == [[0, 1], [2, 3], [4]]
    base = 1000
    limit = base + MESSAGE_OVERHEAD_BYTES + 250
    # 100-byte edits: two fit beside the base image, a third would pass the limit.
    assert split_batches([100] * 5, max_count=16, max_bytes=limit, fixed_bytes=base) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    # An edit larger than any batch goes alone rather than failing.
    assert split_batches([10, 10**6, 10], 16, limit, base) == [[0], [1], [2]]


@pytest.mark.parametrize("size", [(227, 227), (512, 384), (97, 60)])
def test_the_product_grid_maps_equal_the_window_by_window_average(size):
    windows = grid.make_grid(4000, 3000) if size == (512, 384) else grid.make_grid(*size)
    layout = windows.layout().at(size)
    assert layout.rects() == grid.rects_at(windows.rects(), (windows.width, windows.height), size)
    values = np.random.default_rng(1).random((windows.count, 3))
    fast = core.layout_mean_maps(layout, values)
    for k in range(3):
        slow = core.window_mean_map(layout.rects(), values[:, k], *size)
        assert np.allclose(fast[k], slow, rtol=1e-12, atol=1e-12)
    columns, rows = windows.coarse_picks()
    coarse = windows.coarse_indices()
    subset = layout.subset(columns, rows)
    assert subset.rects() == [layout.rects()[i] for i in coarse]
    slow = core.window_mean_map(subset.rects(), values[coarse, 0], *size)
    assert np.allclose(core.layout_mean_maps(subset, values[coarse])[0], slow)


def test_batches_and_calls_in_flight_follow_how_the_model_computes_edits():
    auto = PipelineSettings()
    full, incremental = auto.for_model(False), auto.for_model(True)
    assert (full.batch_size, full.classify_in_flight) == (16, 2)
    assert (incremental.batch_size, incremental.classify_in_flight) == (48, 1)
    # Never more edits per call than the model takes; what an operator set stays.
    assert auto.for_model(True, max_edits=20).batch_size == 20
    chosen = PipelineSettings(batch_size=8, classify_in_flight=3).for_model(True)
    assert (chosen.batch_size, chosen.classify_in_flight) == (8, 3)
