"""The arithmetic of "undesirable pixels" explanations (Kang, Jung & Lee 2019).

Pure functions, no gRPC and no Flask: the sliding-window grid, the Laplace
correction and weight of evidence, the per-pixel maps averaged over the windows
that cover each pixel, their 8-bit rendering, and the masks that the fix-it
counterfactual and the faithfulness score remove.

Weight of evidence of a window r for class c, in bits:
    WE_c(r) = log2 odds p'(c|x) - log2 odds p'(c|x_r)
where x_r is the image with r inpainted, odds(p) = p / (1 - p) and p' is the
Laplace-corrected probability (p*N + 1) / (N + K). WE > 0: removing r lowers
p(c), so r is evidence *for* c; WE < 0: removing r raises p(c), r stands in
the way of c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import InvalidInput

# Laplace correction (Robnik-Sikonja & Kononenko 2008, as used by Zintgraf et
# al. 2017 and Kang et al. 2019): N is the size of the model's training set
# (ImageNet-1k, 1,281,167 images) and K its number of classes. A probability of
# 0 then becomes 1/(N+K) (about -20.3 bits of log-odds) and 1 becomes (N+1)/(N+K)
# (about +10.3 bits), so every weight of evidence is finite.
LAPLACE_N = 1_281_167
LAPLACE_K = 1000

# The default window is about a fifth of the shorter side, rounded to a multiple
# of WINDOW_QUANTUM (227 px -> 45.4 -> 48), the stride a third of it (16).
WINDOW_FRACTION = 0.2
WINDOW_QUANTUM = 8
STRIDE_FRACTION = 1 / 3


def default_window(width: int, height: int) -> int:
    short = min(width, height)
    window = WINDOW_QUANTUM * round(short * WINDOW_FRACTION / WINDOW_QUANTUM)
    return max(1, min(short, window or WINDOW_QUANTUM))


def default_stride(window: int) -> int:
    return max(1, round(window * STRIDE_FRACTION))


def axis_positions(length: int, window: int, stride: int) -> list[int]:
    """Window starts along one axis: 0, stride, 2*stride, ... and, when the last of
    those stops short of the far border, one more window flush with it, so every
    pixel is covered. 227 px, window 48, stride 16 -> 0, 16, ..., 176, 179 (13)."""
    last = length - window
    positions = list(range(0, last + 1, stride))
    if positions[-1] != last:
        positions.append(last)
    return positions


@dataclass(frozen=True)
class WindowGrid:
    """Square windows of `window` px on a width x height image, `stride` apart."""

    width: int
    height: int
    window: int
    stride: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.xs) * len(self.ys)

    def rects(self) -> list[tuple[int, int, int, int]]:
        """(x, y, width, height) of every window, row by row."""
        return [(x, y, self.window, self.window) for y in self.ys for x in self.xs]


def make_grid(
    width: int,
    height: int,
    window: int | None = None,
    stride: int | None = None,
    max_windows: int | None = None,
) -> WindowGrid:
    """The sliding grid for an image; InvalidInput names whatever is wrong."""
    if window is None:
        window = default_window(width, height)
    if stride is None:
        stride = default_stride(window)
    if window < 1:
        raise InvalidInput(f"window must be at least 1 px (got {window})")
    if stride < 1:
        raise InvalidInput(f"stride must be at least 1 px (got {stride})")
    if stride > window:
        raise InvalidInput(
            f"stride of {stride} px is larger than the window of {window} px; "
            "pixels between windows would never be removed"
        )
    if window > min(width, height):
        raise InvalidInput(
            f"window of {window} px is larger than the {width}x{height} image; "
            f"at most {min(width, height)} px"
        )
    if window == width and window == height:
        raise InvalidInput("a window covering the whole image leaves nothing to inpaint from")
    xs = tuple(axis_positions(width, window, stride))
    ys = tuple(axis_positions(height, window, stride))
    grid = WindowGrid(width, height, window, stride, xs, ys)
    if max_windows is not None and grid.count > max_windows:
        raise InvalidInput(
            f"window {window} px with stride {stride} px gives {grid.count} windows on a "
            f"{width}x{height} image; at most {max_windows} are allowed "
            "(use a larger stride or window)"
        )
    return grid


def laplace_correct(p: np.ndarray | float, n: int = LAPLACE_N, k: int = LAPLACE_K) -> np.ndarray:
    return (np.asarray(p, dtype=np.float64) * n + 1.0) / (n + k)


def log2_odds(p: np.ndarray | float) -> np.ndarray:
    """log2(p / (1 - p)) of Laplace-corrected probabilities (finite for 0 and 1)."""
    q = laplace_correct(p)
    return np.log2(q) - np.log2(1.0 - q)


def weight_of_evidence(p_original: np.ndarray, p_removed: np.ndarray) -> np.ndarray:
    """WE in bits, broadcasting: p_original [C], p_removed [windows, C] -> [windows, C]."""
    return log2_odds(p_original) - log2_odds(p_removed)


def window_mean_map(grid: WindowGrid, values: np.ndarray) -> np.ndarray:
    """Per pixel, the mean of `values` (one per window, in grid.rects() order) over
    the windows covering the pixel. HxW float64."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (grid.count,):
        raise ValueError(f"expected {grid.count} window values, got shape {values.shape}")
    total = np.zeros((grid.height, grid.width))
    count = np.zeros((grid.height, grid.width))
    for value, (x, y, w, h) in zip(values, grid.rects(), strict=True):
        total[y : y + h, x : x + w] += value
        count[y : y + h, x : x + w] += 1
    return total / count


@dataclass
class EvidenceMaps:
    """The maps of one explanation, raw, in bits (HxW float64)."""

    hinder: np.ndarray
    support: np.ndarray
    # One per competing class, in the order of `competitor_ids`.
    competitors: list[np.ndarray]


def evidence_maps(grid: WindowGrid, p_original: np.ndarray, p_windows: np.ndarray) -> EvidenceMaps:
    """Maps from the probabilities of [target, *competitors] on the original image
    ([C]) and on each window's inpainting ([windows, C])."""
    we = weight_of_evidence(np.asarray(p_original), np.asarray(p_windows))
    return EvidenceMaps(
        hinder=window_mean_map(grid, np.maximum(0.0, -we[:, 0])),
        support=window_mean_map(grid, np.maximum(0.0, we[:, 0])),
        competitors=[
            window_mean_map(grid, np.maximum(0.0, we[:, j])) for j in range(1, we.shape[1])
        ],
    )


def to_gray8(raw: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A raw map -> (HxW uint8 scaled linearly from its min (0) to its max (255),
    min, max). A flat map is all zeros."""
    low, high = float(raw.min()), float(raw.max())
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError("map has non-finite values")
    if high <= low:
        return np.zeros(raw.shape, dtype=np.uint8), low, high
    scaled = (raw - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8), low, high


def strongest_region_mask(score: np.ndarray, max_fraction: float) -> np.ndarray:
    """The pixels of the highest positive levels of `score`, whole levels only, at
    most `max_fraction` of the image (the fix-it mask). Window-averaged maps are
    piecewise constant, so whole levels are whole blocks: the mask stays compact.
    If even the single highest level is larger than allowed, its first pixels in
    row-major order up to the budget are taken."""
    budget = math.floor(max_fraction * score.size)
    mask = np.zeros(score.shape, dtype=bool)
    if budget < 1:
        return mask
    positive = score[score > 0]
    if positive.size == 0:
        return mask
    levels, counts = np.unique(positive, return_counts=True)
    levels, counts = levels[::-1], counts[::-1]
    taken = np.cumsum(counts)
    whole = int(np.searchsorted(taken, budget, side="right"))
    if whole == 0:
        flat = np.flatnonzero(score.ravel() == levels[0])[:budget]
        mask.ravel()[flat] = True
        return mask
    return score >= levels[whole - 1]


def top_fraction_mask(score: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Exactly round(fraction * pixels) pixels with the highest `score`, ties broken
    at random (seeded), for comparing maps at equal area."""
    k = round(fraction * score.size)
    mask = np.zeros(score.size, dtype=bool)
    if k <= 0:
        return mask.reshape(score.shape)
    rng = np.random.default_rng(seed)
    # Sort by score, then by a random key among equal scores.
    order = np.lexsort((rng.random(score.size), -score.ravel().astype(np.float64)))
    mask[order[:k]] = True
    return mask.reshape(score.shape)


def random_block_map(width: int, height: int, block: int, seed: int) -> np.ndarray:
    """A random map that is constant on block x block cells: thresholded, it gives
    random regions of the same granularity as a window-averaged map."""
    rng = np.random.default_rng(seed)
    cells = rng.random((math.ceil(height / block), math.ceil(width / block)))
    return np.kron(cells, np.ones((block, block)))[:height, :width]
