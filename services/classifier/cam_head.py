"""Find, by graph analysis, the linear map from the last feature map to the class scores.

A class activation map (Zhou et al. 2016) exists when the class scores are a
linear function of a global average of the last spatial feature map f:
score_c = sum_k w_ck mean(f_k) (+ b_c), so CAM_c = sum_k w_ck f_k shows where
class c's score comes from. Two shapes of graph have that structure:

- pool, then linear: GlobalAveragePool (or ReduceMean over the spatial axes,
  or an AveragePool whose kernel covers the whole map), then Gemm or MatMul
  (+ Add), with reshapes in between and at most a Softmax after
  (ResNet, EfficientNet, MobileNetV2);
- linear, then pool: a 1x1 convolution producing one map per class, then
  (through an elementwise activation such as ReLU) the global average pool
  (SqueezeNet, NiN).

The walk starts at the scores output and goes backwards; node and tensor names
are never looked at. What it finds is a `CamHead`: the features tensor (to be
exposed as an extra graph output), its channel axis, and the weights
[classes, channels]. When the structure is not there, the reason says where
the walk stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# Between the pool and the linear layer, and between the linear layer and the
# scores: ops that only reshape (or, at the very end, normalise) the scores.
RESHAPES = frozenset({"Identity", "Flatten", "Reshape", "Squeeze"})
AFTER_LINEAR = RESHAPES | {"Softmax"}
# Between a 1x1 class convolution and its pool: elementwise, order-keeping.
ACTIVATIONS = frozenset({"Identity", "Relu", "LeakyRelu", "Clip"})


@dataclass(frozen=True)
class CamHead:
    features: str  # the last spatial feature map, [N, C, h, w] or [N, h, w, C]
    channel_axis: int  # 1 or 3
    weights: np.ndarray  # [classes, channels], float32
    structure: str  # e.g. "GlobalAveragePool -> Gemm"


class GraphIndex:
    """Who produces each tensor, and the graph's constants (initializers and Constant nodes)."""

    def __init__(self, graph: onnx.GraphProto, shapes: dict[str, list] | None = None) -> None:
        self.producers = {out: node for node in graph.node for out in node.output}
        self.constants = {init.name: init for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute:
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is not None:
                    self.constants[node.output[0]] = value.t
        self.shapes = shapes or {}

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return self.producers.get(tensor)

    def constant(self, tensor: str) -> np.ndarray | None:
        proto = self.constants.get(tensor)
        return None if proto is None else numpy_helper.to_array(proto)

    def skip_back(self, tensor: str, ops: Iterable[str]) -> tuple[str, onnx.NodeProto | None]:
        """Walk back from `tensor` through nodes of `ops` (first input each)."""
        allowed = frozenset(ops)
        node = self.producer(tensor)
        while node is not None and node.op_type in allowed:
            tensor = node.input[0]
            node = self.producer(tensor)
        return tensor, node


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def describe(node: onnx.NodeProto | None) -> str:
    return "the graph's input" if node is None else f"a {node.op_type} node"


def global_pool_channel_axis(index: GraphIndex, node: onnx.NodeProto | None) -> int | None:
    """The channel axis of the map `node` averages over all its positions, or None."""
    if node is None:
        return None
    if node.op_type == "GlobalAveragePool":
        return 1
    if node.op_type == "ReduceMean":
        axes = attribute(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            constant = index.constant(node.input[1])
            axes = None if constant is None else constant.tolist()
        normalised = {axis % 4 for axis in axes or ()}
        if normalised == {2, 3}:
            return 1
        if normalised == {1, 2}:
            return 3
        return None
    if node.op_type == "AveragePool":
        # A fixed-size export's global pool: the kernel covers the whole map.
        shape = index.shapes.get(node.input[0])
        kernel = attribute(node, "kernel_shape")
        pads = attribute(node, "pads") or [0, 0, 0, 0]
        if (
            shape
            and len(shape) == 4
            and kernel
            and list(kernel) == list(shape[2:])
            and not any(pads)
        ):
            return 1
    return None


def linear_weights(index: GraphIndex, node: onnx.NodeProto) -> tuple[np.ndarray | None, str]:
    """[classes, channels] weights of a Gemm/MatMul whose second operand is constant."""
    weights = index.constant(node.input[1]) if len(node.input) > 1 else None
    if weights is None or weights.ndim != 2:
        return None, f"the {node.op_type} producing the scores has no constant 2-D weight matrix"
    if index.constant(node.input[0]) is not None:
        return None, f"the {node.op_type} producing the scores multiplies two constants"
    if node.op_type == "Gemm":
        if attribute(node, "transA", 0):
            return None, "the Gemm producing the scores transposes its input (transA)"
        if not attribute(node, "transB", 0):
            weights = weights.T
        weights = weights * float(attribute(node, "alpha", 1.0))
    else:
        weights = weights.T
    return np.ascontiguousarray(weights, dtype=np.float32), ""


def conv1x1_weights(node: onnx.NodeProto, index: GraphIndex) -> tuple[np.ndarray | None, str]:
    weights = index.constant(node.input[1]) if len(node.input) > 1 else None
    if weights is None or weights.ndim != 4 or weights.shape[2:] != (1, 1):
        return None, "the convolution before the global pool is not a 1x1 convolution"
    if attribute(node, "group", 1) != 1:
        return None, "the 1x1 convolution before the global pool is grouped"
    if any(stride != 1 for stride in attribute(node, "strides", None) or [1, 1]):
        return None, "the 1x1 convolution before the global pool is strided"
    return np.ascontiguousarray(weights[:, :, 0, 0], dtype=np.float32), ""


def find_cam_head(
    graph: onnx.GraphProto, scores: str, shapes: dict[str, list] | None = None
) -> tuple[CamHead | None, str]:
    """(CamHead, "") when the scores have CAM structure, else (None, why not)."""
    index = GraphIndex(graph, shapes)
    _, node = index.skip_back(scores, AFTER_LINEAR)
    if node is not None and node.op_type == "Add":
        # The bias of a MatMul: a constant added to the scores.
        operands = [name for name in node.input if index.constant(name) is None]
        if len(operands) == 1:
            node = index.producer(operands[0])
    if node is not None and node.op_type in ("Gemm", "MatMul"):
        weights, reason = linear_weights(index, node)
        if weights is None:
            return None, reason
        linear = node.op_type
        _, pool = index.skip_back(node.input[0], RESHAPES)
        axis = global_pool_channel_axis(index, pool)
        if axis is None:
            return None, (
                f"the {linear} producing the scores reads {describe(pool)}, "
                "not a global average pool of a feature map"
            )
        return CamHead(pool.input[0], axis, weights, f"{pool.op_type} -> {linear}"), ""
    axis = global_pool_channel_axis(index, node)
    if axis is not None:
        _, conv = index.skip_back(node.input[0], ACTIVATIONS)
        if conv is None or conv.op_type != "Conv" or axis != 1:
            return None, (
                f"the global average pool before the scores reads {describe(conv)}, "
                "neither a 1x1 class convolution nor followed by a linear layer"
            )
        weights, reason = conv1x1_weights(conv, index)
        if weights is None:
            return None, reason
        return CamHead(conv.input[0], 1, weights, f"1x1 Conv -> {node.op_type}"), ""
    return None, (
        f"the scores come from {describe(node)}: there is no global average pool "
        "followed by a linear layer (or preceded by a 1x1 class convolution)"
    )
