"""The plan cut into steps, and what does not change from one batch to the next.

A *step* is one op of the plan, or a sliding op (Conv, MaxPool, AveragePool)
with the point-wise ops that follow it fused into one ONNX Runtime kernel, and
with the GlobalAveragePool after it when it is the only reader of the map; or
stride-1 sibling convolutions of one input and the Concat that alone reads
them (a fire module's expand layers), one kernel computing every branch on the
Concat's region from the one window the widest kernel reads.
Here also: which tensors a tail starting at each step takes (`live_sets`), how
far each patch's change reaches in every tensor (`propagate`), how patches are
grouped into batches (`batches_of_like_reach`), and the tails themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from services.classifier.incremental import kernels
from services.classifier.incremental.plan import GraphPlan, Op, OpGeometry
from services.classifier.incremental.regions import Reach

SLIDING_KINDS = ("conv", "maxpool", "avgpool")


@dataclass
class Step:
    ops: list[Op]
    inputs: list[str]
    output: str
    session: ort.InferenceSession | None = None
    # A sliding step whose map feeds only a GlobalAveragePool takes it in: its
    # kernel returns the mean over the recomputed region, never the map itself.
    pooled: bool = False
    # Sibling convolutions of one input whose outputs only a Concat reads (a
    # SqueezeNet fire module's expand 1x1 and 3x3, an Inception block): one
    # kernel computes every branch on the Concat's region from one window.
    branches: list[list[Op]] | None = None

    @property
    def kind(self) -> str:
        return "branches" if self.branches else self.ops[0].kind

    @property
    def key(self) -> str:
        """Where Geometry.sliding keeps this step's window arithmetic."""
        return self.output if self.branches else self.ops[0].output

    @property
    def head(self) -> Op:
        return self.ops[0]

    @property
    def map_output(self) -> str:
        """The map a sliding step makes (before the pooling it may take in)."""
        return self.ops[-2].output if self.pooled else self.output


@dataclass
class Geometry:
    """Everything that depends on the input size: map sizes and sliding geometry."""

    sizes: dict[str, tuple[int, int]]
    sliding: dict[str, OpGeometry]
    avg_correction: dict[str, np.ndarray]


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
        chain, pooled = [op], False
        while op.kind in SLIDING_KINDS:
            following = consumers.get(chain[-1].output, [])
            if chain[-1].output == plan.output_name or len(following) != 1:
                break
            nxt = following[0]
            takes_pool = nxt.kind == "gap" and op.kind in ("conv", "avgpool")
            if not (takes_pool or nxt.kind == "pointwise") or len(nxt.inputs) != 1:
                break
            chain.append(nxt)
            if takes_pool:
                pooled = True
                break
        taken.update(id(o) for o in chain)
        steps.append(Step(chain, list(op.inputs), chain[-1].output, None, pooled))
    steps = _merge_branches(plan, steps)
    for step in steps:
        if step.kind == "branches":
            step.session = kernels.branches_session(plan, step.branches, step.ops[-1], threads)
        elif step.kind in ("conv", "avgpool"):
            step.session = kernels.kernel_session(plan, step.ops, threads)
    return steps


def _merge_branches(plan: GraphPlan, steps: list[Step]) -> list[Step]:
    """Each Concat whose every input is a stride-1 convolution step of one same
    input tensor, read by nothing else, becomes one step with those branches."""
    readers: dict[str, int] = {}
    for step in steps:
        for name in step.inputs:
            readers[name] = readers.get(name, 0) + 1
    made_by = {step.output: step for step in steps}
    merged: list[Step] = []
    absorbed: set[int] = set()
    for step in steps:
        if step.kind == "concat":
            branches = [made_by.get(name) for name in step.inputs]
            if all(_branch_of(plan, b, readers) for b in branches):
                sources = {b.inputs[0] for b in branches}
                if len(sources) == 1 and len(branches) == len(set(map(id, branches))):
                    absorbed.update(id(b) for b in branches)
                    ops = [op for b in branches for op in b.ops] + step.ops
                    fused = Step(
                        ops, [sources.pop()], step.output, branches=[b.ops for b in branches]
                    )
                    merged = [m for m in merged if id(m) not in absorbed]
                    merged.append(fused)
                    continue
        merged.append(step)
    return merged


def _branch_of(plan: GraphPlan, step: Step | None, readers: dict[str, int]) -> bool:
    if step is None or step.kind != "conv" or step.pooled or step.output == plan.output_name:
        return False
    strides = step.head.attrs.get("strides", [1, 1])
    return list(strides) == [1, 1] and readers.get(step.output) == 1


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
        if step.kind in SLIDING_KINDS or step.kind == "branches":
            sliding = geometry.sliding[step.key]
            reach = first.through(sliding.y, sliding.x, *geometry.sizes[step.map_output])
            if step.pooled:
                reaches[step.map_output] = reach
                reach = reach.whole(1, 1)
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


def input_reach(patches: Sequence, todo: list[int]) -> Reach:
    """The patches' own rectangles (patches[i] for i in todo): their reach in the input."""
    y0 = np.array([patches[i][0] for i in todo], np.int64)
    x0 = np.array([patches[i][1] for i in todo], np.int64)
    y1 = y0 + np.array([patches[i][2].shape[1] for i in todo], np.int64)
    x1 = x0 + np.array([patches[i][2].shape[2] for i in todo], np.int64)
    return Reach(y0, y1, x0, x1, np.ones(len(todo), bool))


def batches_of_like_reach(
    reaches: dict[str, Reach],
    steps: list[Step],
    weights: list[float],
    batch_size: int,
    tolerance: float,
) -> list[np.ndarray]:
    """Positions of the patches, cut into batches of patches of like reach.

    A batch computes, in every step, its largest patch's region for all of its
    patches: the waste is what that costs beyond each patch's own region. The
    patches are sorted by the size of their reach in the most expensive steps,
    and a batch is closed when it is full or when taking the next patch would
    make its cost (MAC-weighted region areas) exceed the patches' own by more
    than `tolerance`.
    """
    count = len(next(iter(reaches.values())).changed)
    if not steps:
        return [np.arange(i, min(i + batch_size, count)) for i in range(0, count, batch_size)]
    heights = np.stack([reaches[s.map_output].y1 - reaches[s.map_output].y0 for s in steps], axis=1)
    widths = np.stack([reaches[s.map_output].x1 - reaches[s.map_output].x0 for s in steps], axis=1)
    weight = np.asarray(weights, np.float64)
    own = (heights * widths) @ weight
    ranked = np.argsort(weight, kind="stable")  # cheapest first: lexsort's last key leads
    order = np.lexsort([k for i in ranked for k in (widths[:, i], heights[:, i])])
    batches, current = [], []
    top_h = top_w = None
    own_sum = 0.0
    for index in order.tolist():
        if current:
            new_h, new_w = np.maximum(top_h, heights[index]), np.maximum(top_w, widths[index])
            cost = (len(current) + 1) * float((new_h * new_w) @ weight)
            if len(current) >= batch_size or cost > (1 + tolerance) * (own_sum + own[index]):
                batches.append(np.array(current))
                current = []
        if not current:
            new_h, new_w, own_sum = heights[index], widths[index], 0.0
        current.append(index)
        top_h, top_w = new_h, new_w
        own_sum += own[index]
    batches.append(np.array(current))
    return batches


class TailSessions:
    """The rest of the network from step j on, built the first time it is needed."""

    def __init__(self, plan: GraphPlan, steps: list[Step], threads: int) -> None:
        self.plan, self.steps, self.threads = plan, steps, threads
        self._sessions: dict[int, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def get(self, index: int, live: list[str], maps: set[str]) -> ort.InferenceSession:
        """`maps`: the live tensors that are maps (fed channels-last)."""
        with self._lock:
            session = self._sessions.get(index)
            if session is None:
                nodes = [op.node for step in self.steps[index:] for op in step.ops]
                session = kernels.tail_session(self.plan, nodes, live, maps, self.threads)
                self._sessions[index] = session
            return session
