"""Unit tests of the explanation arithmetic: grid, Laplace correction, weight of
evidence, window-averaged maps and masks (no services)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import InvalidInput
from gateway.explain import core


def test_default_grid_of_a_227_px_photo_is_48_px_windows_16_px_apart():
    grid = core.make_grid(227, 227)
    assert (grid.window, grid.stride) == (48, 16)
    assert grid.xs == (0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 179)
    assert grid.count == 169 == len(grid.rects())


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
    grid = core.make_grid(width, height, window, stride)
    covered = np.zeros((height, width), dtype=int)
    for x, y, w, h in grid.rects():
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
        covered[y : y + h, x : x + w] += 1
    assert covered.min() >= 1
    # The last window of each axis is flush with the far border.
    assert grid.xs[-1] + grid.window == width and grid.ys[-1] + grid.window == height


def test_default_window_is_about_a_fifth_of_the_shorter_side():
    assert core.default_window(640, 480) == 96
    assert core.default_window(1000, 500) == 96  # 100 -> 12.5 eighths -> 12
    assert core.default_window(20, 20) == 8
    assert core.default_stride(96) == 32


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
        core.make_grid(227, 227, window, stride, max_windows)


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
    grid = core.make_grid(6, 6, window=4, stride=2)  # windows at 0 and 2 on each axis
    assert grid.count == 4
    values = np.array([4.0, 0.0, 0.0, 0.0])  # only the top-left window
    averaged = core.window_mean_map(grid, values)
    assert averaged[0, 0] == 4.0  # covered by window 0 only
    assert averaged[2, 2] == 1.0  # covered by all four
    assert averaged[5, 5] == 0.0


def test_hinder_support_and_competitor_maps_from_probabilities():
    grid = core.make_grid(6, 6, window=4, stride=2)
    p_original = np.array([0.5, 0.1])  # target, one competitor
    # window 0 hides the target's evidence, window 3 hides what stands in its way
    # and the competitor's evidence.
    p_windows = np.array([[0.2, 0.1], [0.5, 0.1], [0.5, 0.1], [0.8, 0.01]])
    maps = core.evidence_maps(grid, p_original, p_windows)
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
