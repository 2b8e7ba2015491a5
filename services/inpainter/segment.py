"""Proposing the region of one object from a click or a box: GrabCut, pure core.

A box drawn round an object is GrabCut's own question (Rother, Kolmogorov &
Blake 2004): outside the box is background, inside it probably foreground;
colour models of both are fitted and a graph cut separates them. A click
says less: where the object is, not how big. So a click is tried as the
centre of boxes of several sizes (fractions of the image's shorter side),
each run as a box question with the clicked pixel marked as sure foreground.
A box that cuts through the object makes it bleed into the box's sides
(where the image itself ends, the object may touch them), so those answers
are set aside; of the others, the region kept is the one whose outline runs
along the strongest edges of the photo (the mean colour gradient on its
boundary): a cut between an object and its surroundings follows edges, a
cut through grass or through the object does not. Near-ties go to the
larger box.

Every run works on a crop around the box scaled to WORK_SIDE pixels, so a
small object is seen large enough to be cut cleanly and a 12 MP photo costs
what a small one does; the region is scaled back to the image. Only the
connected part holding the click (or, for a box, the largest part) is kept,
with its holes filled.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from common.errors import InvalidInput

WORK_SIDE = 160
CLICK_BOX_FRACTIONS = (0.08, 0.15, 0.28, 0.5)
# A box whose "object" fills nearly all of it found background, not an object.
MAX_FILL = 0.85
# Answers whose outline scores within 5% of the best count as equally good.
NEAR_TIE = 0.95
DEFAULT_ITERATIONS = 4
MAX_ITERATIONS = 10
MAX_GROW = 100
RANDOM_SEED = 12345
_POOL = ThreadPoolExecutor(
    max_workers=min(len(CLICK_BOX_FRACTIONS), len(os.sched_getaffinity(0))),
    thread_name_prefix="grabcut",
)


@dataclass(frozen=True)
class Box:
    """Pixels x0 <= u < x1, y0 <= v < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def check_iterations(iterations: int) -> int:
    if iterations == 0:
        return DEFAULT_ITERATIONS
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise InvalidInput(f"iterations={iterations} is out of range 1..{MAX_ITERATIONS}")
    return iterations


def check_grow(grow: int) -> int:
    if not -MAX_GROW <= grow <= MAX_GROW:
        raise InvalidInput(f"grow={grow} is out of range -{MAX_GROW}..{MAX_GROW} px")
    return grow


def segment_click(
    rgb: np.ndarray, x: int, y: int, iterations: int = 0, grow: int = 0
) -> np.ndarray:
    """The object under pixel (x, y): HxW bool."""
    height, width = rgb.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise InvalidInput(f"the click at x={x} y={y} is outside the {width}x{height} image")
    iterations = check_iterations(iterations)
    grow = check_grow(grow)
    short = min(width, height)
    gradient = edge_strength(rgb)
    # (edge score, box side, region) of every answer, and of those that hold up.
    answers, clean = [], []
    boxes = [
        _box_around(x, y, max(8, round(fraction * short)), width, height)
        for fraction in CLICK_BOX_FRACTIONS
    ]
    # The sizes are independent questions; OpenCV lets go of the GIL, so they
    # run side by side on the cores there are.
    runs = _POOL.map(lambda box: _grabcut(rgb, box, iterations, seed=(x, y)), boxes)
    for box, (region, bleeds) in zip(boxes, runs, strict=True):
        side = box.width
        if region is None:
            continue
        answer = (outline_score(region, gradient), side, region)
        answers.append(answer)
        if not bleeds and region.sum() <= MAX_FILL * box.width * box.height:
            clean.append(answer)
    candidates = clean or answers
    if not candidates:  # GrabCut found nothing anywhere: at least the clicked pixel
        chosen = np.zeros((height, width), bool)
        chosen[y, x] = True
        return grown(chosen, grow)
    best = max(score for score, _, _ in candidates)
    _, _, chosen = max((c for c in candidates if c[0] >= NEAR_TIE * best), key=lambda c: c[1])
    return grown(chosen, grow)


def edge_strength(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the colour gradient's magnitude (Sobel in CIELAB, where distances
    are closer to what people see)."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    dx, dy = cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1)
    return np.sqrt((dx * dx + dy * dy).sum(axis=2))


def outline_score(region: np.ndarray, gradient: np.ndarray) -> float:
    """The mean edge strength along the region's boundary (a band of 2-3 px)."""
    as_bytes = region.astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    outline = cv2.dilate(as_bytes, square) != cv2.erode(as_bytes, square)
    return float(gradient[outline].mean()) if outline.any() else 0.0


def segment_box(rgb: np.ndarray, box: Box, iterations: int = 0, grow: int = 0) -> np.ndarray:
    """The object inside `box`: HxW bool (empty if GrabCut finds none)."""
    height, width = rgb.shape[:2]
    if box.width <= 0 or box.height <= 0:
        raise InvalidInput(f"the box {box.width}x{box.height} has no area")
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        raise InvalidInput(
            f"the box x={box.x0} y={box.y0} {box.width}x{box.height} does not fit in the "
            f"{width}x{height} image"
        )
    if box.width == width and box.height == height:
        raise InvalidInput("a box covering the whole image leaves no background to compare with")
    iterations = check_iterations(iterations)
    grow = check_grow(grow)
    region, _ = _grabcut(rgb, box, iterations, seed=None)
    if region is None:
        region = np.zeros((height, width), bool)
    return grown(region, grow)


def grown(region: np.ndarray, pixels: int) -> np.ndarray:
    """The region grown (pixels > 0) or shrunk (< 0) by a disc of that radius."""
    if pixels == 0 or not region.any():
        return region
    size = 2 * abs(pixels) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    as_bytes = region.astype(np.uint8)
    changed = cv2.dilate(as_bytes, disc) if pixels > 0 else cv2.erode(as_bytes, disc)
    return changed.astype(bool)


def bounding_box(region: np.ndarray) -> Box | None:
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    if rows.size == 0:
        return None
    return Box(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _box_around(x: int, y: int, side: int, width: int, height: int) -> Box:
    x0 = min(max(0, x - side // 2), max(0, width - side))
    y0 = min(max(0, y - side // 2), max(0, height - side))
    return Box(x0, y0, min(width, x0 + side), min(height, y0 + side))


def _grabcut(
    rgb: np.ndarray, box: Box, iterations: int, seed: tuple[int, int] | None
) -> tuple[np.ndarray | None, bool]:
    """(the region found in `box`, whether it runs into the box's inner sides),
    or (None, False) when GrabCut finds no foreground there."""
    height, width = rgb.shape[:2]
    margin = max(box.width, box.height) // 2 + 4
    crop = Box(
        max(0, box.x0 - margin),
        max(0, box.y0 - margin),
        min(width, box.x1 + margin),
        min(height, box.y1 + margin),
    )
    scale = WORK_SIDE / max(crop.width, crop.height)
    size = (max(2, round(crop.width * scale)), max(2, round(crop.height * scale)))
    patch = np.ascontiguousarray(rgb[crop.y0 : crop.y1, crop.x0 : crop.x1, ::-1])  # BGR
    shrinking = scale < 1
    small = cv2.resize(patch, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    sx, sy = size[0] / crop.width, size[1] / crop.height

    def to_small(u: float, v: float) -> tuple[int, int]:
        return int((u - crop.x0) * sx), int((v - crop.y0) * sy)

    bx0, by0 = to_small(box.x0, box.y0)
    bx1, by1 = (
        min(size[0], int(np.ceil((box.x1 - crop.x0) * sx))),
        min(size[1], int(np.ceil((box.y1 - crop.y0) * sy))),
    )
    labels = np.full((size[1], size[0]), cv2.GC_BGD, np.uint8)
    labels[by0:by1, bx0:bx1] = cv2.GC_PR_FGD
    if seed is not None:
        px, py = to_small(seed[0] + 0.5, seed[1] + 0.5)
        px, py = min(px, size[0] - 1), min(py, size[1] - 1)
        cv2.circle(labels, (px, py), max(1, (bx1 - bx0) // 16), cv2.GC_FGD, -1)
    if (labels == cv2.GC_BGD).all():
        return None, False
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    # GrabCut seeds its colour models with k-means from OpenCV's random generator
    # (per thread): the same question must get the same answer.
    cv2.setRNGSeed(RANDOM_SEED)
    try:
        cv2.grabCut(small, labels, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # e.g. no background pixel left to model: the box is the whole crop
        return None, False
    found = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    count, parts = cv2.connectedComponents(found)
    if count <= 1:
        return None, False
    if seed is not None:
        keep = parts[py, px]
    else:
        sizes = np.bincount(parts.ravel())[1:]
        keep = int(np.argmax(sizes)) + 1
    part = (parts == keep).astype(np.uint8)
    bleeds = (
        (by0 > 0 and part[by0, bx0:bx1].any())
        or (by1 < size[1] and part[by1 - 1, bx0:bx1].any())
        or (bx0 > 0 and part[by0:by1, bx0].any())
        or (bx1 < size[0] and part[by0:by1, bx1 - 1].any())
    )
    part = _fill_holes(part)
    region = np.zeros((height, width), bool)
    back = cv2.resize(part, (crop.width, crop.height), interpolation=cv2.INTER_NEAREST)
    region[crop.y0 : crop.y1, crop.x0 : crop.x1] = back.astype(bool)
    return region, bool(bleeds)


def _fill_holes(part: np.ndarray) -> np.ndarray:
    """The part with every hole inside it filled (what is not reachable from outside)."""
    padded = np.pad(part, 1)
    outside = padded.copy()
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 1)
    holes = outside[1:-1, 1:-1] == 0
    return (part.astype(bool) | holes).astype(np.uint8)
