"""`IncrementalEngine`: the interface the classifier calls (see the package docstring)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import onnx
import onnxruntime as ort

from common.errors import InvalidInput
from services.classifier.incremental import kernels
from services.classifier.incremental.cache import ActivationCache, content_key
from services.classifier.incremental.plan import GraphPlan, NotIncremental, OpGeometry, Sliding
from services.classifier.incremental.regions import place
from services.classifier.incremental.runtime import BaseActivations, BatchRun
from services.classifier.incremental.steps import (
    Geometry,
    Step,
    TailSessions,
    batches_of_like_reach,
    build_steps,
    input_reach,
    live_sets,
    propagate,
)

Patch = tuple[int, int, np.ndarray] | None

DEFAULT_CACHE_BYTES = 256 * 2**20
# Input shapes whose geometry is remembered (a fully convolutional model sees
# one shape per aspect ratio); the oldest is forgotten beyond this.
GEOMETRIES_KEPT = 32


class IncrementalEngine:
    """Many edits of one base image through one model, recomputing only what each
    edit can change; plain batched inference when the model does not allow it."""

    def __init__(
        self,
        model: onnx.ModelProto,
        input_name: str,
        output_name: str,
        threads: int = 1,
        batch_size: int = 16,
        full_fraction: float = 1.0,
        tolerance: float = 0.1,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        cache: ActivationCache | None = None,
    ) -> None:
        self.plan = GraphPlan(model, input_name, output_name)
        self.threads = threads
        self.batch_size = batch_size
        # A region covering this much of its map is computed as the whole map,
        # so the rest of the network can run as one plain batch sooner.
        self.full_fraction = full_fraction
        # How much more work than its patches' own a batch may do
        # (see steps.batches_of_like_reach).
        self.tolerance = tolerance
        # The base activations: a cache of its own, or one shared by several
        # engines (the classifier's models), each engine's keys its own.
        self.cache: ActivationCache[BaseActivations] = (
            cache if cache is not None else ActivationCache(cache_bytes)
        )
        self._cache_scope = f"{id(self):x}:"
        # Per input shape: its geometry, or why it cannot run incrementally.
        self._geometry: dict[tuple[int, ...], Geometry | NotIncremental] = {}
        self._lock = threading.Lock()
        inputs = {i.name: i for i in model.graph.input}
        if input_name not in inputs:
            raise ValueError(f"the model has no input {input_name!r}")
        self._input_info = inputs[input_name]
        self._full_session: ort.InferenceSession | None = None
        self.steps: list[Step] = []
        self.live: list[list[str]] = []
        if self.plan.supported:
            # Kernels and tails run on one thread each; with more threads, that
            # many batches run at once (their runs release the GIL). Short runs
            # gain little from a thread pool and pay for waking it every time.
            self.steps = build_steps(self.plan, 1)
            self.live = live_sets(self.steps, input_name, output_name)
            self.tails = TailSessions(self.plan, self.steps, 1)
            # Multiply-adds per output position of each convolution step.
            self._weighted_steps = [s for s in self.steps if s.kind in ("conv", "branches")]
            self._step_weights = [
                sum(
                    float(self.plan.initializers[op.node.input[1]].size)
                    for op in s.ops
                    if op.kind == "conv"
                )
                for s in self._weighted_steps
            ]
            # Every step's output, and the maps whose global pooling a step took in.
            names = [n for s in self.steps for n in (s.map_output, s.output)]
            self._cached = list(dict.fromkeys(names))
            self._activations = kernels.activations_session(self.plan, self._cached, threads)

    @property
    def _full(self) -> ort.InferenceSession:
        """Whole-network inference, for the bases that cannot run incrementally."""
        with self._lock:
            if self._full_session is None:
                nodes = list(self.plan.model.graph.node)
                self._full_session = kernels.subgraph_session(
                    self.plan, nodes, [self.plan.input_name], [self.plan.output_name], self.threads
                )
            return self._full_session

    @property
    def supported(self) -> bool:
        return self.plan.supported

    @property
    def reason(self) -> str:
        return self.plan.reason

    def warm_up(self, height: int, width: int) -> None:
        """Run a small grid of windows on a [1, C, height, width] input, so that
        the first real call does not pay for building tails and first runs.
        Its activations do not stay in the cache."""
        channels = self._input_info.type.tensor_type.shape.dim[1].dim_value or 3
        tensor = np.random.default_rng(0).normal(0, 1, (1, channels, height, width))
        tensor = tensor.astype(np.float32)
        side = max(1, min(height, width) // 5)
        patches = [
            (y, x, tensor[0, :, y : y + side, x : x + side] * 0.5)
            for y in (0, (height - side) // 2, height - side)
            for x in (0, (width - side) // 2, width - side)
        ]
        with self.scratch():
            self.run(self.prepare(tensor), patches)

    @contextmanager
    def scratch(self) -> Iterator[None]:
        """Bases prepared inside stay out of the cache (a private one meanwhile):
        for trial runs, before the engine serves calls."""
        cache, self.cache = self.cache, ActivationCache(self.cache.max_bytes)
        try:
            yield
        finally:
            self.cache = cache

    # -- the base image ----------------------------------------------------------
    def prepare(self, tensor: np.ndarray) -> BaseActivations:
        """The base image's activations (from the cache when this input was seen).
        `base.incremental` says whether run() will be incremental for it, and
        `base.reason` why not (the model, or a shape at this input size)."""
        return self.prepare_base(tensor)[0]

    def prepare_base(self, tensor: np.ndarray) -> tuple[BaseActivations, bool]:
        """prepare(), and whether the activations came from the cache. Calls
        with the same input at the same time compute it once."""
        self._check_input(tensor)
        key = self._cache_scope + content_key(tensor)
        base, made = self.cache.get_or_make(key, lambda: self._base_of(key, tensor))
        return base, not made

    def _base_of(self, key: str, tensor: np.ndarray) -> BaseActivations:
        tensor = tensor.copy()  # the cache keeps it: the caller may reuse theirs
        base = None
        if self.supported:
            try:
                base = self._activations_of(key, tensor)
            except NotIncremental as exc:
                reason = str(exc)
        else:
            reason = self.reason
        if base is None:
            output = self._full.run(None, {self.plan.input_name: tensor})[0][0]
            base = BaseActivations(key, tensor, {}, output, None, reason=reason)
        return base

    def _activations_of(self, key: str, tensor: np.ndarray) -> BaseActivations:
        values = self._activations.run(self._cached, {self.plan.input_name: tensor})
        raw = {self.plan.input_name: tensor} | dict(zip(self._cached, values, strict=True))
        geometry = self._geometry_for(tensor.shape, {n: v.shape for n, v in raw.items()})
        # Maps channels-last, the runtime's layout; other tensors as they are.
        tensors = {
            n: np.ascontiguousarray(v[0].transpose(1, 2, 0)) if v.ndim == 4 else v[0]
            for n, v in raw.items()
        }
        output = raw[self.plan.output_name][0].copy()
        base = BaseActivations(key, tensor, tensors, output, geometry)
        for step in self.steps:
            name = step.inputs[0]
            if step.kind in ("conv", "maxpool", "avgpool", "branches"):
                sliding = geometry.sliding[step.key]
                value = -np.inf if step.kind == "maxpool" else 0.0
                pads = (sliding.margins_y, sliding.margins_x, (0, 0))
                base.padded[(name, sliding.margins_y, sliding.margins_x, value)] = np.pad(
                    tensors[name], pads, constant_values=value
                )
            if step.kind == "gap" or step.pooled:
                pooled = step.inputs[0] if step.kind == "gap" else step.map_output
                height, width, channels = tensors[pooled].shape
                sums = np.zeros((height + 1, width + 1, channels))
                sums[1:, 1:] = tensors[pooled].astype(np.float64).cumsum(0).cumsum(1)
                base.sums[pooled] = sums
        return base

    def _geometry_for(self, shape: tuple[int, ...], shapes: dict[str, tuple[int, ...]]) -> Geometry:
        with self._lock:
            known = self._geometry.get(shape)
            if isinstance(known, NotIncremental):
                raise known
            if known is not None:
                return known
            if len(self._geometry) >= GEOMETRIES_KEPT:
                del self._geometry[next(iter(self._geometry))]
            try:
                geometry = self._new_geometry(dict(shapes))
            except NotIncremental as exc:
                self._geometry[shape] = exc
                raise
            self._geometry[shape] = geometry
            return geometry

    def _new_geometry(self, shapes: dict[str, tuple[int, ...]]) -> Geometry:
        for step in self.steps:  # the maps fused ops make in between, not cached
            if step.kind == "branches":
                n, _, height, width = shapes[step.output]
                for chain in step.branches:
                    channels = self.plan.initializers[chain[0].node.input[1]].shape[0]
                    for op in chain:
                        shapes.setdefault(op.output, (n, channels, height, width))
            else:
                for op in step.ops[:-1]:
                    shapes.setdefault(op.output, shapes[step.map_output])
        sizes = {n: (s[2], s[3]) if len(s) == 4 else (1, 1) for n, s in shapes.items()}
        sliding = self.plan.specialise(shapes)
        for step in self.steps:
            if step.kind == "branches":
                sliding[step.key] = _window_of(
                    [sliding[c[0].output] for c in step.branches],
                    shapes[step.inputs[0]][2:],
                    shapes[step.output][2:],
                )
        corrections = {}
        for step in self.steps:
            if step.kind == "avgpool":
                op = step.head
                geo = sliding[op.output]
                ratio = kernels.average_divisor_correction(
                    self.plan, op, (geo.margins_y, geo.margins_x), sizes[op.inputs[0]]
                )
                if ratio is not None:
                    corrections[op.output] = ratio
        return Geometry(sizes, sliding, corrections)

    # -- the edits ---------------------------------------------------------------
    def run(self, base: BaseActivations, patches: Sequence[Patch]) -> np.ndarray:
        """The output tensor for every patch laid over the base input, in order;
        a None patch stands for the base image itself."""
        self._check_patches(base, patches)
        rows = np.empty((len(patches), *base.output.shape), np.float32)
        todo = [i for i, p in enumerate(patches) if p is not None]
        rows[[i for i, p in enumerate(patches) if p is None]] = base.output
        if not todo:
            return rows
        if not base.incremental:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                batch = np.repeat(base.input, len(chunk), axis=0)
                for slot, index in enumerate(chunk):
                    y, x, values = patches[index]
                    batch[slot, :, y : y + values.shape[1], x : x + values.shape[2]] = values
                rows[chunk] = self._full.run(None, {self.plan.input_name: batch})[0]
            return rows
        reaches, batches = self._plan_batches(base, [patches[i] for i in todo])

        def run_batch(chunk: np.ndarray) -> None:  # chunk: positions in `todo`
            batch_reaches = {name: reach.subset(chunk) for name, reach in reaches.items()}
            indices = [todo[p] for p in chunk]
            overlays = [patches[i] for i in indices]
            rows[indices] = BatchRun(self, base, batch_reaches).run(overlays)

        if self.threads == 1 or len(batches) == 1:
            for chunk in batches:
                run_batch(chunk)
        else:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="incremental") as pool:
                list(pool.map(run_batch, batches))
        return rows

    def _plan_batches(self, base: BaseActivations, patches: Sequence[Patch]):
        reaches = propagate(
            self.steps,
            self.plan.input_name,
            input_reach(patches, list(range(len(patches)))),
            base.geometry,
        )
        # At least one batch per thread when there are patches enough.
        size = min(self.batch_size, max(1, -(-len(patches) // self.threads)))
        batches = batches_of_like_reach(
            reaches, self._weighted_steps, self._step_weights, size, self.tolerance
        )
        return reaches, batches

    def multiply_adds(
        self, base: BaseActivations, patches: Sequence[Patch]
    ) -> tuple[float, float, float]:
        """Convolution multiply-adds of `patches` (none of them None): by whole-
        network inference, over each patch's exact reach (the ideal), and over
        the regions the batches compute (each batch its largest for all)."""
        self._check_patches(base, patches)
        if not base.incremental or any(p is None for p in patches):
            raise ValueError("multiply_adds needs an incremental base and no None patches")
        reaches, batches = self._plan_batches(base, patches)
        whole = exact = batched = 0.0
        for step, weight in zip(self._weighted_steps, self._step_weights, strict=True):
            height, width = base.geometry.sizes[step.map_output]
            reach = reaches[step.map_output]
            whole += weight * height * width * len(patches)
            exact += weight * float(((reach.y1 - reach.y0) * (reach.x1 - reach.x0)).sum())
            for chunk in batches:
                region = place(reach.subset(chunk), height, width, self.full_fraction)
                batched += weight * region.height * region.width * len(chunk)
        return whole, exact, batched

    # -- checks ------------------------------------------------------------------
    def _check_input(self, tensor: np.ndarray) -> None:
        if not isinstance(tensor, np.ndarray) or tensor.dtype != np.float32 or tensor.ndim != 4:
            raise InvalidInput("the base input must be a float32 array [1, C, H, W]")
        if tensor.shape[0] != 1:
            raise InvalidInput(f"the base input holds {tensor.shape[0]} images; give one")
        dims = self._input_info.type.tensor_type.shape.dim
        for axis, what in ((1, "channels"), (2, "height"), (3, "width")):
            expected = dims[axis].dim_value if len(dims) == 4 else 0
            if expected and tensor.shape[axis] != expected:
                raise InvalidInput(
                    f"the base input has {tensor.shape[axis]} as {what}; the model takes {expected}"
                )
        if min(tensor.shape[2:]) < 1:
            raise InvalidInput("the base input is empty")

    def _check_patches(self, base: BaseActivations, patches: Sequence[Patch]) -> None:
        _, channels, height, width = base.input.shape
        for index, patch in enumerate(patches):
            if patch is None:
                continue
            if not isinstance(patch, tuple) or len(patch) != 3:
                raise InvalidInput(f"patch {index} is not (y, x, values)")
            y, x, values = patch
            if not all(isinstance(v, int | np.integer) for v in (y, x)):
                raise InvalidInput(f"patch {index}: y and x must be integers")
            if not isinstance(values, np.ndarray) or values.ndim != 3 or values.dtype != np.float32:
                raise InvalidInput(f"patch {index}: values must be a float32 array [C, h, w]")
            if values.shape[0] != channels:
                raise InvalidInput(
                    f"patch {index} has {values.shape[0]} channels; the network input has {channels}"
                )
            rows, cols = values.shape[1:]
            if rows < 1 or cols < 1:
                raise InvalidInput(f"patch {index} is empty ({cols}x{rows})")
            if y < 0 or x < 0 or y + rows > height or x + cols > width:
                raise InvalidInput(
                    f"patch {index} ({cols}x{rows} at y={y}, x={x}) reaches outside the "
                    f"{width}x{height} network input"
                )


def _window_of(branches: list[OpGeometry], in_size, out_size) -> OpGeometry:
    """One stride-1 window that holds what every branch's kernel reads around an
    output position: from the largest reach before it to the largest after."""
    axes = []
    for axis in ("y", "x"):
        own = [getattr(b, axis) for b in branches]
        before = max(a.pad_begin for a in own)
        after = max(a.extent - 1 - a.pad_begin for a in own)
        axes.append(Sliding(before + after + 1, 1, 1, before, max(a.pad_end for a in own)))
    margins = [a.margins(n, m) for a, n, m in zip(axes, in_size, out_size, strict=True)]
    return OpGeometry(axes[0], axes[1], margins[0], margins[1])
