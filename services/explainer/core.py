"""The arithmetic of "undesirable pixels" explanations (Kang, Jung & Lee 2019).

Pure functions, no gRPC: the Laplace correction and weight of evidence, the
per-pixel maps averaged over the windows that cover each pixel, their 8-bit
rendering, and the masks that the fix-it counterfactual and the faithfulness
score remove. Where the windows lie is grid.py's business.

Weight of evidence of a window r for class c, in bits:
    WE_c(r) = log2 odds p'(c|x) - log2 odds p'(c|x_r)
where x_r is the image with r inpainted, odds(p) = p / (1 - p) and p' is the
Laplace-corrected probability (p*N + 1) / (N + K). WE > 0: removing r lowers
p(c), so r is evidence *for* c; WE < 0: removing r raises p(c), r stands in
the way of c.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.explainer.grid import Layout, Rect, Span

# Laplace correction (Robnik-Sikonja & Kononenko 2008, as used by Zintgraf et
# al. 2017 and Kang et al. 2019): N is the size of the model's training set
# (ImageNet-1k, 1,281,167 images; kept for a model of your own, whose training
# set we cannot know) and K its number of classes (the model's own: 1000 for
# the built-in models, 5 for a 5-class model; with N this large the difference
# is small, but the answer's `laplace` then states what was used). A probability of
# 0 then becomes 1/(N+K) (about -20.3 bits of log-odds) and 1 becomes (N+1)/(N+K)
# (about +10.3 bits), so every weight of evidence is finite.
LAPLACE_N = 1_281_167
LAPLACE_K = 1000


def laplace_correct(p: np.ndarray | float, n: int = LAPLACE_N, k: int = LAPLACE_K) -> np.ndarray:
    return (np.asarray(p, dtype=np.float64) * n + 1.0) / (n + k)


def log2_odds(p: np.ndarray | float, classes: int = LAPLACE_K) -> np.ndarray:
    """log2(p / (1 - p)) of Laplace-corrected probabilities (finite for 0 and 1)."""
    q = laplace_correct(p, k=classes)
    return np.log2(q) - np.log2(1.0 - q)


def weight_of_evidence(
    p_original: np.ndarray, p_removed: np.ndarray, classes: int = LAPLACE_K
) -> np.ndarray:
    """WE in bits, broadcasting: p_original [C], p_removed [windows, C] -> [windows, C]
    (C: the classes asked about, of a model with `classes` classes)."""
    return log2_odds(p_original, classes) - log2_odds(p_removed, classes)


def window_mean_map(
    rects: Sequence[Rect], values: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Per pixel of a width x height picture, the mean of `values` (one per
    rectangle) over the rectangles covering the pixel. HxW float64; 0 where
    nothing covers (the grids of grid.py leave no such pixel). Any rectangles;
    layout_mean_maps does the same for a product grid, faster."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(rects),):
        raise ValueError(f"expected {len(rects)} window values, got shape {values.shape}")
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for value, (x, y, w, h) in zip(values, rects, strict=True):
        total[y : y + h, x : x + w] += value
        count[y : y + h, x : x + w] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def layout_mean_maps(layout: Layout, values: np.ndarray) -> np.ndarray:
    """window_mean_map for every column of `values` ([windows, C], in
    layout.rects() order) at once -> [C, H, W]. A product grid's sums separate:
    each row of windows is one line of values across the picture, added over
    the rows it covers; a millisecond instead of tens for the default grid.
    (Plain NumPy on purpose: BLAS threads cost more than these small sums, and
    a pixel no window gives weight to stays exactly 0.)"""
    values = np.asarray(values, dtype=np.float64)
    columns, rows = len(layout.columns), len(layout.rows)
    if values.ndim != 2 or values.shape[0] != columns * rows:
        raise ValueError(f"expected {columns * rows} window values, got shape {values.shape}")
    across = _axis_matrix(layout.columns, layout.width)  # [columns, W]
    down = _axis_matrix(layout.rows, layout.height)  # [rows, H]
    grid_values = values.reshape(rows, columns, values.shape[1])
    # Each row of windows as lines across the picture: [rows, C, W].
    lines = (grid_values[:, :, :, None] * across[None, :, None, :]).sum(axis=1)
    total = np.zeros((values.shape[1], layout.height, layout.width))
    for line, (start, size) in zip(lines, layout.rows, strict=True):
        total[:, start : start + size, :] += line[:, None, :]
    count = np.outer(down.sum(axis=0), across.sum(axis=0))
    count[count == 0] = 1.0  # uncovered: its total is 0, and stays 0
    total /= count
    return total


def _axis_matrix(spans: Sequence[Span], length: int) -> np.ndarray:
    """1 where span k covers position i along the axis."""
    matrix = np.zeros((len(spans), length))
    for k, (start, size) in enumerate(spans):
        matrix[k, start : start + size] = 1.0
    return matrix


@dataclass
class EvidenceMaps:
    """The maps of one explanation, raw, in bits (HxW float64)."""

    hinder: np.ndarray
    support: np.ndarray
    # One per competing class, in the order of the competitors.
    competitors: list[np.ndarray]


def evidence_maps(
    layout: Layout, p_original: np.ndarray, p_windows: np.ndarray, classes: int = LAPLACE_K
) -> EvidenceMaps:
    """Maps on the layout's picture from the probabilities of [target,
    *competitors] on the original image ([C]) and on each window's inpainting
    ([windows, C], in layout.rects() order), for a model of `classes` classes."""
    we = weight_of_evidence(np.asarray(p_original), np.asarray(p_windows), classes)
    per_window = np.concatenate(
        [np.maximum(0.0, -we[:, :1]), np.maximum(0.0, we[:, :1]), np.maximum(0.0, we[:, 1:])],
        axis=1,
    )
    maps = layout_mean_maps(layout, per_window)
    return EvidenceMaps(hinder=maps[0], support=maps[1], competitors=list(maps[2:]))


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
