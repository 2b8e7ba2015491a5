"""Where each patch's change reaches, and the part of each map recomputed for it.

A `Reach` holds, for every patch of a set, the exact range of a tensor's map
that its edit can change ([y0, y1) x [x0, x1), or nothing): the projective
field, propagated op by op with the arithmetic of `plan.Sliding`.

A `Region` is what a batch actually recomputes: one height and width for all
its patches (the largest reach, so the kernels run on one batched tensor) at a
per-patch position that contains that patch's reach and stays inside the map.
Recomputing more than the reach is still exact: outside it the values equal
the base image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.classifier.incremental.plan import Sliding


@dataclass
class Reach:
    y0: np.ndarray
    y1: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    changed: np.ndarray  # bool: the edit reaches this tensor at all

    @classmethod
    def empty(cls, count: int) -> Reach:
        zeros = np.zeros(count, np.int64)
        return cls(zeros, zeros, zeros, zeros, np.zeros(count, bool))

    def subset(self, indices: np.ndarray) -> Reach:
        return Reach(
            self.y0[indices],
            self.y1[indices],
            self.x0[indices],
            self.x1[indices],
            self.changed[indices],
        )

    def through(self, y: Sliding, x: Sliding, out_height: int, out_width: int) -> Reach:
        """The reach in a sliding op's output."""
        y0, y1 = y.touched(self.y0, self.y1, out_height)
        x0, x1 = x.touched(self.x0, self.x1, out_width)
        changed = self.changed & (y1 > y0) & (x1 > x0)
        return Reach(y0, y1, x0, x1, changed).cleared()

    def union(self, other: Reach) -> Reach:
        """Bounding box of two reaches (either may be empty per patch)."""
        big = np.iinfo(np.int64).max

        def low(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.minimum(np.where(self.changed, a, big), np.where(other.changed, b, big))

        def high(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.maximum(np.where(self.changed, a, -big), np.where(other.changed, b, -big))

        return Reach(
            low(self.y0, other.y0),
            high(self.y1, other.y1),
            low(self.x0, other.x0),
            high(self.x1, other.x1),
            self.changed | other.changed,
        ).cleared()

    def whole(self, height: int, width: int) -> Reach:
        """Every changed patch reaches the whole (height x width) map."""
        count = len(self.changed)
        return Reach(
            np.zeros(count, np.int64),
            np.where(self.changed, height, 0),
            np.zeros(count, np.int64),
            np.where(self.changed, width, 0),
            self.changed.copy(),
        )

    def cleared(self) -> Reach:
        """Unchanged patches get the empty range [0, 0)."""
        keep = self.changed
        return Reach(
            np.where(keep, self.y0, 0),
            np.where(keep, self.y1, 0),
            np.where(keep, self.x0, 0),
            np.where(keep, self.x1, 0),
            keep,
        )

    @property
    def any(self) -> bool:
        return bool(self.changed.any())


@dataclass
class Region:
    """The recomputed part of one tensor for a batch: values[i] covers rows
    top[i]..top[i]+height and columns left[i]..left[i]+width of patch i's map."""

    top: np.ndarray
    left: np.ndarray
    height: int
    width: int
    map_height: int
    map_width: int
    values: np.ndarray | None = None

    @property
    def full(self) -> bool:
        return self.height == self.map_height and self.width == self.map_width

    def same_place(self, top: np.ndarray, left: np.ndarray, height: int, width: int) -> bool:
        return (
            self.height == height
            and self.width == width
            and np.array_equal(self.top, top)
            and np.array_equal(self.left, left)
        )

    def with_values(self, values: np.ndarray) -> Region:
        return Region(
            self.top, self.left, self.height, self.width, self.map_height, self.map_width, values
        )


def place(reach: Reach, map_height: int, map_width: int, full_fraction: float) -> Region:
    """One size for the batch (the largest reach), each patch's window placed so
    it holds its reach and stays inside the map. A region covering at least
    `full_fraction` of the map becomes the whole map, so later ops can run as
    plain whole-map inference."""
    changed = reach.changed
    height = int((reach.y1 - reach.y0)[changed].max(initial=0))
    width = int((reach.x1 - reach.x0)[changed].max(initial=0))
    if height * width >= full_fraction * map_height * map_width:
        height, width = map_height, map_width
    top = np.where(changed, np.minimum(reach.y0, map_height - height), 0)
    left = np.where(changed, np.minimum(reach.x0, map_width - width), 0)
    return Region(top, left, height, width, map_height, map_width)
