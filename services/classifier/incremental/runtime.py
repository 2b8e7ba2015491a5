"""The incremental runtime: a base image's cached activations, then, for a batch
of patches, a gather-compute-scatter per step of the plan.

A *step* (see steps.py) is one op of the plan, or a sliding op with the
point-wise ops after it, or sibling convolutions and their Concat. For a
batch, each step:
- gathers, per patch, the input window its recomputed output region reads:
  the base map's values (from a copy padded with zeros, or -inf before a
  MaxPool) with the patch's own recomputed input region laid over them;
- computes the step on the whole batch at once (an ONNX Runtime kernel for
  convolutions and average pooling; NumPy for max pooling, point-wise ops, Add
  and the global pooling, which is updated from the base's cached sums);
- keeps the result as that tensor's region for the next steps to gather from.
A Concat that is a step of its own is never copied: its region is the list of
its parts, and whoever reads it gathers the parts straight into place. As soon as every tensor still
needed covers whole maps, the rest of the network (the *tail*) runs as one
ordinary ONNX Runtime batch.

Maps are kept channels-last ([H, W, C]) here: a patch's window is then a few
long contiguous rows, which NumPy copies several times faster than the many
short rows of the channels-first layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.classifier.incremental.plan import GraphPlan, Op, OpGeometry, Sliding
from services.classifier.incremental.regions import Reach, Region, place
from services.classifier.incremental.steps import SLIDING_KINDS, Geometry, Step


@dataclass
class BaseActivations:
    """A base image's network input [1, C, H, W], its output (batch dimension
    dropped) and the activations the runtime reads: maps channels-last
    ([H, W, C]), zero- or -inf-padded copies, running sums for global pooling.
    Without geometry (and `reason` saying why) edits of it run in full."""

    key: str
    input: np.ndarray
    tensors: dict[str, np.ndarray]
    output: np.ndarray
    geometry: Geometry | None
    padded: dict[tuple, np.ndarray] = field(default_factory=dict)
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""

    @property
    def incremental(self) -> bool:
        return self.geometry is not None

    @property
    def nbytes(self) -> int:
        arrays = [self.input, *self.tensors.values(), *self.padded.values(), *self.sums.values()]
        return sum(a.nbytes for a in arrays)


class BatchRun:
    """One batch of patches through the steps (state lives here, not in the engine)."""

    def __init__(self, engine, base: BaseActivations, reaches: dict[str, Reach]) -> None:
        self.engine = engine
        self.plan: GraphPlan = engine.plan
        self.base = base
        self.reaches = reaches
        self.count = len(next(iter(reaches.values())).changed)
        self.regions: dict[str, Region] = {}
        # Concat outputs are kept as their parts: name -> [(first channel, part name)].
        self.parts: dict[str, list[tuple[int, str]]] = {}

    def run(self, patches: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
        engine, sizes = self.engine, self.base.geometry.sizes
        name = self.plan.input_name
        region = place(self.reaches[name], *sizes[name], engine.full_fraction)
        # Patches come channels-first, as the network input.
        overlays = [(y, x, values.transpose(1, 2, 0)) for y, x, values in patches]
        self.regions[name] = region.with_values(self._gather(name, region, overlays=overlays))
        for index, step in enumerate(engine.steps):
            live = engine.live[index]
            if step.kind == "dense":
                for tensor in live:
                    self._materialise(tensor)
            if all(self._whole_or_unchanged(t) for t in live):
                return self._tail(index, live)
            if any(self.reaches[n].changed.any() for n in step.inputs):
                self._compute(step)
        output = self.plan.output_name
        self._materialise(output)
        values = self.regions[output].values
        return values.transpose(0, 3, 1, 2) if values.ndim == 4 else values

    # -- steps ---------------------------------------------------------------
    def _compute(self, step: Step) -> None:
        sizes = self.base.geometry.sizes
        name = step.map_output
        region = place(self.reaches[name], *sizes[name], self.engine.full_fraction)
        if step.pooled:
            means = self._sliding(step, region)[:, 0, 0, :]
            sums = means.astype(np.float64) * (region.height * region.width)
            whole = place(self.reaches[step.output], 1, 1, 1.0)
            self.regions[step.output] = whole.with_values(self._pooled(step, name, region, sums))
            return
        if step.kind == "concat":
            self.regions[step.output] = region
            self.parts[step.output] = self._concat_parts(step)
            return
        if step.kind in SLIDING_KINDS or step.kind == "branches":
            values = self._sliding(step, region)
        elif step.kind == "pointwise":
            region = self.regions[step.inputs[0]]
            values = _pointwise(step.head, self._values(step.inputs[0]), self.plan)
        elif step.kind == "add":
            values = self._gather(step.inputs[0], region) + self._gather(step.inputs[1], region)
        elif step.kind == "gap":
            values = self._global_average(step)
        else:
            raise AssertionError(f"{step.kind} steps run in the tail")
        self.regions[step.output] = region.with_values(values)

    def _concat_parts(self, step: Step) -> list[tuple[int, str]]:
        parts, channel = [], 0
        for name in step.inputs:
            parts.append((channel, name))
            channel += self.base.tensors[name].shape[-1]
        return parts

    def _sliding(self, step: Step, region: Region) -> np.ndarray:
        sliding = self.base.geometry.sliding[step.key]
        top, rows = sliding.y.reads(region.top, region.height)
        left, cols = sliding.x.reads(region.left, region.width)
        pad = -np.inf if step.kind == "maxpool" else 0.0
        window = Region(top, left, rows, cols, 0, 0)
        gathered = self._gather(step.inputs[0], window, padding=(sliding, pad))
        if step.kind == "maxpool":
            values = _max_pool(gathered, sliding.y, sliding.x, region.height, region.width)
            for op in step.ops[1:]:
                values = _pointwise(op, values, self.plan)
            return values
        values = step.session.run(None, {"x": gathered})[0]
        correction = self.base.geometry.avg_correction.get(step.key)
        if correction is not None:
            tops, lefts = region.top.tolist(), region.left.tolist()
            for i in range(self.count):
                y, x = tops[i], lefts[i]
                values[i] *= correction[y : y + region.height, x : x + region.width, None]
        return values

    def _global_average(self, step: Step) -> np.ndarray:
        name = step.inputs[0]
        values = self._values(name)
        return self._pooled(
            step, name, self.regions[name], values.sum(axis=(1, 2), dtype=np.float64)
        )

    def _pooled(self, step: Step, name: str, region: Region, sums: np.ndarray) -> np.ndarray:
        """The global average of map `name` given the sums [B, C] of each patch's
        recomputed region: the base's mean corrected by what the region changed,
        exact but for rounding, and reading only the region."""
        height, width = self.base.geometry.sizes[name]
        if region.full:
            means = sums / (height * width)
        else:
            base_sums = self.base.sums[name]
            bottom, right = region.top + region.height, region.left + region.width
            old = (
                base_sums[bottom, right]
                - base_sums[region.top, right]
                - base_sums[bottom, region.left]
                + base_sums[region.top, region.left]
            )
            base_mean = self.base.tensors[step.output].reshape(1, -1).astype(np.float64)
            means = base_mean + (sums - old) / (height * width)
        return means.astype(np.float32)[:, None, None, :]

    # -- moving values ---------------------------------------------------------
    def _values(self, name: str) -> np.ndarray:
        """The values of `name` on its own region (a Concat's parts put together)."""
        region = self.regions[name]
        if region.values is None:
            region.values = self._gather(name, region)
        return region.values

    def _gather(
        self,
        name: str,
        window: Region,
        padding: tuple[OpGeometry, float] | None = None,
        overlays: list[tuple[int, int, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Per patch, the base map's values in `window` (which may reach into the
        padding) with the patch's recomputed region of `name` laid over them."""
        source = self.regions.get(name)
        if (
            overlays is None
            and source is not None
            and source.values is not None
            and source.same_place(window.top, window.left, window.height, window.width)
        ):
            return source.values
        if padding is None:
            base, offset_y, offset_x = self.base.tensors[name], 0, 0
        else:
            sliding, value = padding
            base = self.base.padded[(name, sliding.margins_y, sliding.margins_x, value)]
            offset_y, offset_x = sliding.margins_y[0], sliding.margins_x[0]
        rows, cols = window.height, window.width
        out = np.empty((self.count, rows, cols, base.shape[-1]), np.float32)
        tops, lefts = window.top.tolist(), window.left.tolist()
        for i in range(self.count):
            y, x = tops[i] + offset_y, lefts[i] + offset_x
            out[i] = base[y : y + rows, x : x + cols]
        if overlays is not None:
            for i, (y, x, values) in enumerate(overlays):
                _lay(out[i], tops[i], lefts[i], values, y, x)
        else:
            self._overlay(out, name, tops, lefts, slice(None))
        return out

    def _overlay(
        self, out: np.ndarray, name: str, tops: list, lefts: list, channels: slice
    ) -> None:
        """Lay the recomputed region of `name` over `out` (windows at tops/lefts)."""
        reach = self.reaches[name]
        if not reach.changed.any():
            return
        if name in self.parts:
            start = channels.start or 0
            for first, part in self.parts[name]:
                count = self.base.tensors[part].shape[-1]
                self._overlay(out, part, tops, lefts, slice(start + first, start + first + count))
            return
        region = self.regions[name]
        src_tops, src_lefts = region.top.tolist(), region.left.tolist()
        changed = reach.changed.tolist()
        for i in range(self.count):
            if changed[i]:
                _lay(
                    out[i, ..., channels],
                    tops[i],
                    lefts[i],
                    region.values[i],
                    src_tops[i],
                    src_lefts[i],
                )

    def _whole_or_unchanged(self, name: str) -> bool:
        if not self.reaches[name].changed.any():
            return True
        region = self.regions.get(name)
        return region is not None and region.full

    def _materialise(self, name: str) -> None:
        """Make `name` a whole map for every patch (base values where unchanged)."""
        region = self.regions.get(name)
        if region is not None and region.full:
            self._values(name)
            return
        height, width = self.base.geometry.sizes[name]
        zeros = np.zeros(self.count, np.int64)
        whole = Region(zeros, zeros, height, width, height, width)
        base = self.base.tensors[name]
        if base.ndim != 3:  # non-spatial tensors are only ever whole
            values = np.repeat(base[None], self.count, axis=0)
        else:
            values = self._gather(name, whole)
        self.regions[name] = whole.with_values(values)

    def _tail(self, index: int, live: list[str]) -> np.ndarray:
        feeds, maps = {}, set()
        for name in live:
            if self.reaches[name].changed.any():
                values = self._values(name)
            else:
                base = self.base.tensors[name]
                values = np.ascontiguousarray(np.broadcast_to(base, (self.count, *base.shape)))
            if values.ndim == 4:
                maps.add(name)
            feeds[f"{name}:nhwc" if values.ndim == 4 else name] = values
        return self.engine.tails.get(index, live, maps).run(None, feeds)[0]


def _lay(out: np.ndarray, top: int, left: int, values: np.ndarray, src_top: int, src_left: int):
    """Copy the part of `values` (at src_top, src_left) that falls inside `out`
    (a window at top, left) into it."""
    y0, y1 = max(top, src_top), min(top + out.shape[0], src_top + values.shape[0])
    x0, x1 = max(left, src_left), min(left + out.shape[1], src_left + values.shape[1])
    if y0 < y1 and x0 < x1:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = values[
            y0 - src_top : y1 - src_top, x0 - src_left : x1 - src_left
        ]


def _max_pool(x: np.ndarray, y: Sliding, x_: Sliding, height: int, width: int) -> np.ndarray:
    """Max pooling of channels-last windows without padding (the gather put -inf
    there): rows first, then columns, each a running maximum of strided views."""
    rows = None
    for k in range(y.kernel):
        start = k * y.dilation
        view = x[:, start : start + (height - 1) * y.stride + 1 : y.stride]
        rows = view.copy() if rows is None else np.maximum(rows, view, out=rows)
    out = None
    for k in range(x_.kernel):
        start = k * x_.dilation
        view = rows[:, :, start : start + (width - 1) * x_.stride + 1 : x_.stride]
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


def _pointwise(op: Op, values: np.ndarray, plan: GraphPlan) -> np.ndarray:
    node = op.node
    if node.op_type == "Relu":
        return np.maximum(values, np.float32(0.0))
    if node.op_type == "Clip":
        low, high = op.attrs.get("min", -np.inf), op.attrs.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            low = plan.initializers[node.input[1]]
        if len(node.input) > 2 and node.input[2]:
            high = plan.initializers[node.input[2]]
        return np.clip(values, low, high).astype(np.float32, copy=False)
    if node.op_type == "Add":  # a constant that does not vary over space
        constant = next(plan.initializers[i] for i in node.input if i in plan.initializers)
        if constant.ndim >= 3:  # [.., C, 1, 1] -> channels last
            constant = constant.reshape(-1)
        return (values + constant).astype(np.float32, copy=False)
    raise AssertionError(f"{node.op_type} is not point-wise")
