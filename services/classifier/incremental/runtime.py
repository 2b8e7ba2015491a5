"""The incremental runtime: a base image's cached activations, then, for a batch
of patches, a gather-compute-scatter per step of the plan.

A *step* is one op of the plan, or a sliding op (Conv, MaxPool, AveragePool)
with the point-wise ops that follow it fused in. For a batch, each step:
- gathers, per patch, the input window its recomputed output region reads:
  the base map's values (from a copy padded with zeros, or -inf before a
  MaxPool) with the patch's own recomputed input region laid over them;
- computes the step on the whole batch at once (an ONNX Runtime kernel for
  sliding ops; NumPy for point-wise ops, Concat, Add and the global pooling,
  which is updated from the base's cached sums);
- keeps the result as that tensor's region for the next steps to gather from.
As soon as every tensor still needed covers whole maps, the rest of the network
(the *tail*) runs as one ordinary ONNX Runtime batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from services.classifier.incremental import kernels
from services.classifier.incremental.plan import GraphPlan, Op, OpGeometry
from services.classifier.incremental.regions import Reach, Region, place

SLIDING_KINDS = ("conv", "maxpool", "avgpool")


@dataclass
class Step:
    ops: list[Op]
    inputs: list[str]
    output: str
    session: ort.InferenceSession | None = None

    @property
    def kind(self) -> str:
        return self.ops[0].kind

    @property
    def head(self) -> Op:
        return self.ops[0]


@dataclass
class Geometry:
    """Everything that depends on the input size: map sizes and sliding geometry."""

    sizes: dict[str, tuple[int, int]]
    sliding: dict[str, OpGeometry]
    avg_correction: dict[str, np.ndarray]


@dataclass
class BaseActivations:
    """A base image's network input and the activations the runtime reads."""

    key: str
    input_shape: tuple[int, ...]
    tensors: dict[str, np.ndarray]  # batch dimension dropped
    output: np.ndarray  # the output tensor of the base image, batch dimension dropped
    geometry: Geometry
    padded: dict[tuple, np.ndarray] = field(default_factory=dict)
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        arrays = [*self.tensors.values(), *self.padded.values(), *self.sums.values()]
        return sum(a.nbytes for a in arrays)


def build_steps(plan: GraphPlan, threads: int) -> list[Step]:
    """Group the plan's ops into steps and make the kernels of the sliding ones."""
    consumers: dict[str, list[Op]] = {}
    for op in plan.ops:
        for name in op.inputs:
            consumers.setdefault(name, []).append(op)
    steps, taken = [], set()
    for op in plan.ops:
        if id(op) in taken:
            continue
        chain = [op]
        if op.kind in SLIDING_KINDS:
            while True:
                following = consumers.get(chain[-1].output, [])
                if chain[-1].output == plan.output_name or len(following) != 1:
                    break
                nxt = following[0]
                if nxt.kind != "pointwise" or len(nxt.inputs) != 1:
                    break
                chain.append(nxt)
        taken.update(id(o) for o in chain)
        session = kernels.kernel_session(plan, chain, threads) if op.kind in SLIDING_KINDS else None
        steps.append(Step(chain, list(op.inputs), chain[-1].output, session))
    return steps


def live_sets(steps: list[Step], input_name: str, output_name: str) -> list[list[str]]:
    """live[j]: tensors made before step j that step j or a later one (or the
    output) reads: what a tail starting at step j takes as input."""
    last_use = {output_name: len(steps)}
    for index, step in enumerate(steps):
        for name in step.inputs:
            last_use[name] = index
    made_at = {input_name: -1} | {s.output: i for i, s in enumerate(steps)}
    return [
        sorted(t for t, made in made_at.items() if made < j and last_use.get(t, -2) >= j)
        for j in range(len(steps) + 1)
    ]


def propagate(
    steps: list[Step], input_name: str, input_reach: Reach, geometry: Geometry
) -> dict[str, Reach]:
    """The reach of every patch in every tensor the steps make."""
    reaches = {input_name: input_reach}
    for step in steps:
        first = reaches[step.inputs[0]]
        height, width = geometry.sizes[step.output]
        if step.kind in SLIDING_KINDS:
            sliding = geometry.sliding[step.head.output]
            reach = first.through(sliding.y, sliding.x, height, width)
        elif step.kind in ("concat", "add"):
            reach = first
            for name in step.inputs[1:]:
                reach = reach.union(reaches[name])
        elif step.kind == "pointwise":
            reach = first
        else:  # global pooling and dense ops: any change reaches everything
            reach = first.whole(height, width)
        reaches[step.output] = reach
    return reaches


class BatchRun:
    """One batch of patches through the steps (state lives here, not in the engine)."""

    def __init__(self, engine, base: BaseActivations, reaches: dict[str, Reach]) -> None:
        self.engine = engine
        self.base = base
        self.reaches = reaches
        self.count = len(next(iter(reaches.values())).changed)
        self.regions: dict[str, Region] = {}

    def run(self, overlays: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
        engine, sizes = self.engine, self.base.geometry.sizes
        name = engine.plan.input_name
        region = place(self.reaches[name], *sizes[name], engine.full_fraction)
        self.regions[name] = region.with_values(self._gather(name, None, region, overlays))
        for index, step in enumerate(engine.steps):
            live = engine.live[index]
            if step.kind == "dense":
                for tensor in live:
                    self._materialise(tensor)
            if all(self._whole_or_unchanged(t) for t in live):
                return self._tail(index, live)
            if not any(self.reaches[n].changed.any() for n in step.inputs):
                continue
            self.regions[step.output] = self._compute(step)
        self._materialise(engine.plan.output_name)
        return self.regions[engine.plan.output_name].values

    # -- steps ---------------------------------------------------------------
    def _compute(self, step: Step) -> Region:
        sizes = self.base.geometry.sizes
        region = place(self.reaches[step.output], *sizes[step.output], self.engine.full_fraction)
        if step.kind in SLIDING_KINDS:
            return region.with_values(self._sliding(step, region))
        if step.kind == "pointwise":
            source = self.regions[step.inputs[0]]
            return source.with_values(_pointwise(step.head, source.values, self.engine.plan))
        if step.kind in ("concat", "add"):
            parts = [self._gather(n, None, region) for n in step.inputs]
            values = np.concatenate(parts, axis=1) if step.kind == "concat" else _sum(parts)
            return region.with_values(values)
        if step.kind == "gap":
            return region.with_values(self._global_average(step))
        raise AssertionError(f"{step.kind} steps run in the tail")

    def _sliding(self, step: Step, region: Region) -> np.ndarray:
        sliding = self.base.geometry.sliding[step.head.output]
        top, rows = sliding.y.reads(region.top, region.height)
        left, cols = sliding.x.reads(region.left, region.width)
        pad = -np.inf if step.kind == "maxpool" else 0.0
        window = Region(top, left, rows, cols, 0, 0)
        gathered = self._gather(step.inputs[0], (sliding, pad), window)
        values = step.session.run(None, {"x": gathered})[0]
        correction = self.base.geometry.avg_correction.get(step.head.output)
        if correction is not None:
            for i, (t, left_) in enumerate(zip(region.top.tolist(), region.left.tolist())):
                values[i] *= correction[t : t + region.height, left_ : left_ + region.width]
        return values

    def _global_average(self, step: Step) -> np.ndarray:
        name = step.inputs[0]
        source = self.regions[name]
        height, width = self.base.geometry.sizes[name]
        if source.full:
            means = source.values.mean(axis=(2, 3), dtype=np.float64)
        else:
            # The base's mean, corrected by what the patch changed: exact but for
            # rounding, and it reads only the recomputed region.
            new = source.values.sum(axis=(2, 3), dtype=np.float64)
            sums = self.base.sums[name]
            bottom, right = source.top + source.height, source.left + source.width
            old = (
                sums[:, bottom, right]
                - sums[:, source.top, right]
                - sums[:, bottom, source.left]
                + sums[:, source.top, source.left]
            ).T
            base_mean = self.base.tensors[step.output].reshape(1, -1).astype(np.float64)
            means = base_mean + (new - old) / (height * width)
        return means.astype(np.float32)[:, :, None, None]

    # -- moving values ---------------------------------------------------------
    def _gather(
        self,
        name: str,
        padding: tuple[OpGeometry, float] | None,
        window: Region,
        overlays: list[tuple[int, int, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Per patch, the base map's values in `window` (which may reach into the
        padding) with the patch's recomputed region of `name` laid over them."""
        source = self.regions.get(name)
        if overlays is None and source is not None:
            if source.same_place(window.top, window.left, window.height, window.width):
                return source.values
        if padding is None:
            base, offset_y, offset_x = self.base.tensors[name], 0, 0
        else:
            sliding, value = padding
            base = self.base.padded[(name, sliding.margins_y, sliding.margins_x, value)]
            offset_y, offset_x = sliding.margins_y[0], sliding.margins_x[0]
        rows, cols = window.height, window.width
        out = np.empty((self.count, base.shape[0], rows, cols), np.float32)
        changed = self.reaches[name].changed.tolist()
        tops, lefts = window.top.tolist(), window.left.tolist()
        for i in range(self.count):
            y, x = tops[i], lefts[i]
            out[i] = base[:, y + offset_y : y + offset_y + rows, x + offset_x : x + offset_x + cols]
            if not changed[i]:
                continue
            if overlays is not None:
                src_y, src_x, values = overlays[i]
            else:
                src_y, src_x, values = int(source.top[i]), int(source.left[i]), source.values[i]
            y0, y1 = max(y, src_y), min(y + rows, src_y + values.shape[1])
            x0, x1 = max(x, src_x), min(x + cols, src_x + values.shape[2])
            if y0 < y1 and x0 < x1:
                out[i, :, y0 - y : y1 - y, x0 - x : x1 - x] = values[
                    :, y0 - src_y : y1 - src_y, x0 - src_x : x1 - src_x
                ]
        return out

    def _whole_or_unchanged(self, name: str) -> bool:
        if not self.reaches[name].changed.any():
            return True
        region = self.regions.get(name)
        return region is not None and region.full

    def _materialise(self, name: str) -> None:
        """Make `name` a whole map for every patch (base values where unchanged)."""
        if self._whole_or_unchanged(name) and name in self.regions:
            return
        height, width = self.base.geometry.sizes[name]
        zeros = np.zeros(self.count, np.int64)
        whole = Region(zeros, zeros, height, width, height, width)
        base = self.base.tensors[name]
        if base.ndim != 3:  # non-spatial tensors are only ever whole
            values = np.repeat(base[None], self.count, axis=0)
        else:
            values = self._gather(name, None, whole)
        self.regions[name] = whole.with_values(values)

    def _tail(self, index: int, live: list[str]) -> np.ndarray:
        feeds = {}
        for name in live:
            region = self.regions.get(name)
            if region is None or not self.reaches[name].changed.any():
                base = self.base.tensors[name]
                feeds[name] = np.ascontiguousarray(np.broadcast_to(base, (self.count, *base.shape)))
            else:
                feeds[name] = region.values
        return self.engine.tail_session(index, live).run(None, feeds)[0]


def _pointwise(op: Op, values: np.ndarray, plan: GraphPlan) -> np.ndarray:
    node = op.node
    if node.op_type == "Relu":
        return np.maximum(values, 0.0)
    if node.op_type == "Clip":
        low, high = op.attrs.get("min", -np.inf), op.attrs.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            low = plan.initializers[node.input[1]]
        if len(node.input) > 2 and node.input[2]:
            high = plan.initializers[node.input[2]]
        return np.clip(values, low, high).astype(np.float32, copy=False)
    if node.op_type == "Add":  # a constant that does not vary over space
        constant = next(plan.initializers[i] for i in node.input if i in plan.initializers)
        return (values + constant).astype(np.float32, copy=False)
    raise AssertionError(f"{node.op_type} is not point-wise")


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    total = parts[0] + parts[1]
    for part in parts[2:]:
        total += part
    return total


class TailSessions:
    """The rest of the network from step j on, built the first time it is needed."""

    def __init__(self, plan: GraphPlan, steps: list[Step], threads: int) -> None:
        self.plan, self.steps, self.threads = plan, steps, threads
        self._sessions: dict[int, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def get(self, index: int, live: list[str]) -> ort.InferenceSession:
        with self._lock:
            session = self._sessions.get(index)
            if session is None:
                nodes = [op.node for step in self.steps[index:] for op in step.ops]
                session = kernels.subgraph_session(
                    self.plan, nodes, live, [self.plan.output_name], self.threads
                )
                self._sessions[index] = session
            return session
