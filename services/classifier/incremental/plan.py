"""Graph analysis for incremental inference: which ops, in which order, and how
far a change in one tensor reaches into the next.

`GraphPlan(model, input_name, output_name)` walks the ONNX graph once: the ops
needed for the output in topological order, each classified by how it moves a
changed region (point-wise, sliding window, channel concatenation, sum, global
pooling, or "dense": Flatten and Gemm, which need whole maps), and the reason
when some op cannot be run incrementally. `GraphPlan.specialise(shapes)` then
fixes the geometry for one input size: every sliding op's kernel, stride,
dilation and (possibly asymmetric, auto_pad resolved) pads per axis, and the
margins the padded caches need, ceil_mode's overhang included.

The arithmetic of one axis (`Sliding`): output o reads the input positions
[o*s - pad_begin, o*s - pad_begin + (k-1)*d + 1). A change of the input range
[a, b) therefore reaches the outputs o with o*s - pad_begin + (k-1)*d >= a and
o*s - pad_begin <= b - 1: its projective field. Recomputing an output range
needs the input range it reads: the context the kernel sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

POINTWISE = {"Relu", "Clip"}
SLIDING = {"Conv", "MaxPool", "AveragePool"}
# Ops that need whole maps (after the global pooling): they run in the tail.
DENSE = {"Flatten", "Gemm"}
SUPPORTED = POINTWISE | SLIDING | DENSE | {"Concat", "Add", "GlobalAveragePool"}


def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray | int:
    return -((-a) // b)


@dataclass(frozen=True)
class Sliding:
    """One axis of a sliding-window op (convolution or pooling)."""

    kernel: int
    stride: int
    dilation: int
    pad_begin: int
    pad_end: int

    @property
    def extent(self) -> int:
        """Input positions one output spans, dilation included."""
        return (self.kernel - 1) * self.dilation + 1

    def touched(
        self, start: np.ndarray, stop: np.ndarray, out_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs [lo, hi) whose window reads any input in [start, stop): the
        projective field (dense over the kernel, so a dilated kernel's gaps only
        make it conservative). Empty input ranges must be masked by the caller."""
        lo = _ceil_div(start + self.pad_begin - self.extent + 1, self.stride)
        hi = (stop - 1 + self.pad_begin) // self.stride + 1
        return np.clip(lo, 0, out_size), np.clip(hi, 0, out_size)

    def reads(self, start: np.ndarray | int, size: int) -> tuple[np.ndarray | int, int]:
        """(first input position, how many) read by `size` outputs from `start` on;
        the first may be negative (padding)."""
        return start * self.stride - self.pad_begin, (size - 1) * self.stride + self.extent

    def margins(self, in_size: int, out_size: int) -> tuple[int, int]:
        """Padding a cached map needs on each side so that every output's window
        lies inside it: the pads, and at the end ceil_mode's overhang if larger."""
        last_read = (out_size - 1) * self.stride - self.pad_begin + self.extent
        return self.pad_begin, max(self.pad_end, last_read - in_size, 0)


@dataclass
class Op:
    """One ONNX node, as the incremental runtime sees it."""

    node: onnx.NodeProto
    kind: str  # "pointwise", "conv", "maxpool", "avgpool", "concat", "add", "gap", "dense"
    inputs: list[str]  # activation inputs (initializers excluded)
    output: str
    attrs: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name or self.output


@dataclass(frozen=True)
class OpGeometry:
    """A sliding op's geometry at one input size."""

    y: Sliding
    x: Sliding
    margins_y: tuple[int, int]
    margins_x: tuple[int, int]


class GraphPlan:
    """The ops that compute `output_name` from `input_name`, and whether every one
    of them can be run incrementally (`supported`; `reason` says why not)."""

    def __init__(self, model: onnx.ModelProto, input_name: str, output_name: str) -> None:
        self.model = model
        self.input_name = input_name
        self.output_name = output_name
        graph = model.graph
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.ops: list[Op] = []
        self.reason = ""
        try:
            nodes = self._needed_nodes(graph)
            self.ops = [self._classify(node) for node in nodes]
            self._check_input(graph)
        except _Unsupported as exc:
            self.reason = str(exc)
        self.supported = not self.reason

    # -- graph walking -------------------------------------------------------
    def _needed_nodes(self, graph: onnx.GraphProto) -> list[onnx.NodeProto]:
        producer = {}
        for node in graph.node:
            for out in node.output:
                producer[out] = node
        if self.output_name not in producer:
            raise _Unsupported(f"no node produces the output {self.output_name!r}")
        needed: dict[int, onnx.NodeProto] = {}
        stack = [self.output_name]
        while stack:
            name = stack.pop()
            node = producer.get(name)
            if node is None or id(node) in needed:
                if node is None and name not in self.initializers and name != self.input_name:
                    raise _Unsupported(f"tensor {name!r} is neither computed nor a weight")
                continue
            needed[id(node)] = node
            stack.extend(i for i in node.input if i)
        # graph.node is topologically sorted (an ONNX requirement): keep its order.
        return [n for n in graph.node if id(n) in needed]

    def _check_input(self, graph: onnx.GraphProto) -> None:
        inputs = {i.name: i for i in graph.input}
        if self.input_name not in inputs:
            raise _Unsupported(f"the model has no input {self.input_name!r}")
        rank = len(inputs[self.input_name].type.tensor_type.shape.dim)
        if rank != 4:
            raise _Unsupported(f"input {self.input_name!r} has rank {rank}, not 4 (NCHW)")

    def _classify(self, node: onnx.NodeProto) -> Op:
        kind = node.op_type
        if node.domain not in ("", "ai.onnx") or kind not in SUPPORTED:
            raise _Unsupported(f"operator {kind} is not supported")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        activations = [i for i in node.input if i and i not in self.initializers]
        if len([o for o in node.output if o]) != 1:
            # MaxPool's optional Indices: positions in the whole map, not a patch.
            raise _Unsupported(f"{kind} node {node.name!r}: only its first output is supported")
        output = node.output[0]
        if kind in POINTWISE:
            return Op(node, "pointwise", activations, output, attrs)
        if kind in SLIDING:
            if len(activations) != 1:
                raise _Unsupported(f"{kind} node {node.name!r}: weights must be constants")
            if kind == "Conv" and node.input[1] not in self.initializers:
                raise _Unsupported(f"Conv node {node.name!r}: weights must be constants")
            return Op(
                node, kind.lower().replace("averagepool", "avgpool"), activations, output, attrs
            )
        if kind == "Concat":
            if attrs.get("axis") not in (1, -3):
                raise _Unsupported(
                    f"Concat node {node.name!r} on axis {attrs.get('axis')}, not channels"
                )
            return Op(node, "concat", activations, output, attrs)
        if kind == "Add":
            return self._classify_add(node, activations, output, attrs)
        if kind == "GlobalAveragePool":
            return Op(node, "gap", activations, output, attrs)
        return Op(node, "dense", activations, output, attrs)

    def _classify_add(
        self, node: onnx.NodeProto, activations: list[str], output: str, attrs: dict
    ) -> Op:
        if len(activations) == 2:
            return Op(node, "add", activations, output, attrs)
        constant = next(i for i in node.input if i in self.initializers)
        shape = self.initializers[constant].shape
        # A constant added to a map is point-wise only if it does not vary over space.
        if (len(shape) >= 2 and (shape[-1] != 1 or shape[-2] != 1)) or len(shape) > 4:
            raise _Unsupported(f"Add node {node.name!r} adds a constant that varies over space")
        if len(shape) == 1 and shape[0] != 1:
            raise _Unsupported(f"Add node {node.name!r} adds a constant along the width")
        return Op(node, "pointwise", activations, output, attrs)

    # -- geometry --------------------------------------------------------------
    def specialise(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, OpGeometry]:
        """Each sliding op's geometry, from the tensor shapes at one input size.

        Raises NotIncremental when the shapes rule it out at this size (a map
        added to one it is broadcast over, a Concat of maps of different sizes)."""
        geometry = {}
        for op in self.ops:
            ranks = {len(shapes[n]) for n in op.inputs}
            if op.kind in ("conv", "maxpool", "avgpool", "gap", "add", "concat") and ranks != {4}:
                raise NotIncremental(f"{op.name}: {op.node.op_type} of a tensor that is not a map")
            if op.kind == "add" and len({shapes[n] for n in op.inputs}) != 1:
                raise NotIncremental(f"{op.name}: Add broadcasts one map over another")
            if op.kind == "concat" and len({shapes[n][2:] for n in op.inputs}) != 1:
                raise NotIncremental(f"{op.name}: Concat of maps of different sizes")
            if op.kind not in ("conv", "maxpool", "avgpool"):
                continue
            in_shape, out_shape = shapes[op.inputs[0]], shapes[op.output]
            axes = self.sliding_axes(op, in_shape[2:])
            margins = [
                ax.margins(n, m) for ax, n, m in zip(axes, in_shape[2:], out_shape[2:], strict=True)
            ]
            geometry[op.output] = OpGeometry(axes[0], axes[1], margins[0], margins[1])
        return geometry

    def sliding_axes(self, op: Op, in_size: tuple[int, ...]) -> list[Sliding]:
        """The (y, x) geometry of a sliding op on an input map of in_size (H, W)."""
        attrs = op.attrs
        if op.kind == "conv":
            kernel = list(self.initializers[op.node.input[1]].shape[2:])
        else:
            kernel = list(attrs["kernel_shape"])
        if len(kernel) != 2:
            raise NotIncremental(
                f"{op.name}: a {len(kernel)}-D kernel; only 2-D maps are supported"
            )
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        axes = []
        for i in range(2):
            begin, end = pads[i], pads[i + 2]
            extent = (kernel[i] - 1) * dilations[i] + 1
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                out = -(-in_size[i] // strides[i])
                total = max(0, (out - 1) * strides[i] + extent - in_size[i])
                small, large = total // 2, total - total // 2
                begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
            elif auto_pad == "VALID":
                begin, end = 0, 0
            axes.append(Sliding(kernel[i], strides[i], dilations[i], begin, end))
        return axes


class _Unsupported(Exception):
    pass


class NotIncremental(ValueError):
    """The model cannot run incrementally at this input size (the reason says why)."""
