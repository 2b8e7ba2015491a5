"""Where the windows of an explanation lie, and at which resolutions it works.

Pure functions, no gRPC. The grid is defined on the request image (its window
and stride are what the person asked for); the windows are then mapped onto
two other pictures of the same photo:
- the *working copy*, at the model's input resolution, where windows are
  inpainted and classified (a 12 MP photo costs what a small one does: the
  classifier would shrink it to its input size anyway);
- the *maps*, at the request size capped to a longest side, so the answer's
  size is bounded whatever the photo.
For a photo no larger than both (the page's 227 px working copy), all three
are the same picture and nothing is mapped.

The coarse pass is a subset of the grid's own windows (every k-th position
on each axis, k = window // stride, plus the last): its windows are computed
once and reused by the full grid, and they still cover every pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import InvalidInput

# The default window is about a fifth of the shorter side, rounded to a multiple
# of WINDOW_QUANTUM (227 px -> 45.4 -> 48), the stride a third of it (16).
WINDOW_FRACTION = 0.2
WINDOW_QUANTUM = 8
STRIDE_FRACTION = 1 / 3

Rect = tuple[int, int, int, int]  # x, y, width, height
Span = tuple[int, int]  # start, length: a window's extent along one axis


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

    def rects(self) -> list[Rect]:
        """(x, y, width, height) of every window, row by row."""
        return self.layout().rects()

    def layout(self) -> Layout:
        return Layout(
            self.width,
            self.height,
            tuple((x, self.window) for x in self.xs),
            tuple((y, self.window) for y in self.ys),
        )

    def coarse_picks(self) -> tuple[list[int], list[int]]:
        """(columns, rows) of the coarse pass; all of them when the grid is
        already as coarse as it gets (stride > window / 2)."""
        step = self.window // self.stride
        if step < 2:
            return list(range(len(self.xs))), list(range(len(self.ys)))
        return _every(len(self.xs), step), _every(len(self.ys), step)

    def coarse_indices(self) -> list[int]:
        """The windows of the coarse pass, as indices into rects()."""
        columns, rows = self.coarse_picks()
        return [row * len(self.xs) + column for row in rows for column in columns]


@dataclass(frozen=True)
class Layout:
    """Windows forming a product grid on a width x height picture: every column
    span with every row span, row by row (the order of WindowGrid.rects()).
    Mapped to another size it stays one, which keeps the maps cheap (core.py)."""

    width: int
    height: int
    columns: tuple[Span, ...]
    rows: tuple[Span, ...]

    def rects(self) -> list[Rect]:
        return [(x, y, w, h) for y, h in self.rows for x, w in self.columns]

    def subset(self, columns: list[int], rows: list[int]) -> Layout:
        return Layout(
            self.width,
            self.height,
            tuple(self.columns[c] for c in columns),
            tuple(self.rows[r] for r in rows),
        )

    def at(self, size: tuple[int, int]) -> Layout:
        """The same windows on a picture of `size` (edges rounded, see rects_at)."""
        width, height = size
        return Layout(
            width,
            height,
            tuple(_span_at(span, width / self.width) for span in self.columns),
            tuple(_span_at(span, height / self.height) for span in self.rows),
        )


def _span_at(span: Span, scale: float) -> Span:
    start, length = span
    first = round(start * scale)
    return first, round((start + length) * scale) - first


def _every(count: int, step: int) -> list[int]:
    """0, step, 2*step, ... below count, and the last index: consecutive picks are
    at most `step` positions, so at most one window apart, and the far border is kept."""
    picks = list(range(0, count, step))
    if picks[-1] != count - 1:
        picks.append(count - 1)
    return picks


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


# -- the other resolutions -------------------------------------------------------


def working_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The working copy's size: the image's own when its shorter side is at most
    `short_side` (the model's input), else shrunk to it with the aspect kept,
    rounded exactly as the classifier rounds its own resize (so it finds the
    copy already at its input size and classifies it as it would the photo)."""
    if short_side <= 0 or min(width, height) <= short_side:
        return width, height
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def map_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The answer's maps: the request size, shrunk (aspect kept) to `max_side`."""
    longest = max(width, height)
    if max_side <= 0 or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def rects_at(rects: list[Rect], source: tuple[int, int], target: tuple[int, int]) -> list[Rect]:
    """Rectangles of a source-size image on a target-size one, edges rounded.

    Rounding is monotone, so windows that cover the source without gaps cover
    the target without gaps; a window smaller than a target pixel may map to
    nothing (its neighbours cover the spot). The same size maps to itself."""
    sx, sy = target[0] / source[0], target[1] / source[1]
    mapped = []
    for x, y, w, h in rects:
        (x0, w0), (y0, h0) = _span_at((x, w), sx), _span_at((y, h), sy)
        mapped.append((x0, y0, w0, h0))
    return mapped


def covering_rects(
    rects: list[Rect], source: tuple[int, int], target: tuple[int, int]
) -> list[Rect]:
    """Rectangles of a source-size image on a target-size one, grown outwards to
    whole target pixels (at least one): what to remove from the working copy so
    that all of each window is gone. The same size maps to itself."""
    if source == target:
        return list(rects)
    sx, sy = target[0] / source[0], target[1] / source[1]
    mapped = []
    for x, y, w, h in rects:
        x0, y0 = math.floor(x * sx), math.floor(y * sy)
        x1 = min(target[0], max(x0 + 1, math.ceil((x + w) * sx)))
        y1 = min(target[1], max(y0 + 1, math.ceil((y + h) * sy)))
        mapped.append((x0, y0, x1 - x0, y1 - y0))
    return mapped
