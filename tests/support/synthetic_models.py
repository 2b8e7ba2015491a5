"""Small ONNX graphs built in the tests, with random weights, for the operators
the real models do not have (or not yet: EfficientNet-Lite0 arrives later)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Nodes and weights of one graph; each add returns its output's name."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def _name(self, kind: str) -> str:
        return f"{kind}{len(self.nodes) + len(self.initializers)}"

    def const(self, values) -> str:
        name = self._name("w")
        self.initializers.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, group: int = 1, **attrs) -> str:
        fan_in = cin // group * k * k
        weight = self.rng.normal(0, 1 / np.sqrt(fan_in), (cout, cin // group, k, k))
        bias = self.rng.normal(0, 0.1, cout)
        return self.node(
            "Conv",
            [x, self.const(weight), self.const(bias)],
            kernel_shape=[k, k],
            group=group,
            **attrs,
        )

    def model(self, output: str, input_shape: list[int | str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "synthetic",
            [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
            initializer=self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8  # what the installed ONNX Runtime reads
        return model


def efficientnet_like(size: int = 48, classes: int = 10) -> onnx.ModelProto:
    """The operators of EfficientNet-Lite0 at a fixed input size: TF-SAME
    asymmetric pads on a strided stem, depthwise 3x3 and 5x5 convolutions,
    Clip(0, 6), linear projections with residual Adds, a grouped dilated
    convolution, SAME_UPPER auto_pad, an AveragePool shortcut, and a
    GlobalAveragePool + Flatten + Gemm head."""
    g = GraphBuilder(seed=1)
    low, high = g.const(0.0), g.const(6.0)
    stem = g.node("Clip", [g.conv("input", 3, 8, 3, strides=[2, 2], pads=[0, 0, 1, 1]), low, high])
    depthwise = g.node("Clip", [g.conv(stem, 8, 8, 3, group=8, pads=[1, 1, 1, 1]), low, high])
    block = g.node("Add", [stem, g.conv(depthwise, 8, 8, 1)])
    expand = g.node("Clip", [g.conv(block, 8, 16, 1), low, high])
    strided = g.conv(expand, 16, 16, 5, group=16, strides=[2, 2], pads=[1, 1, 2, 2])
    project = g.conv(g.node("Clip", [strided, low, high]), 16, 12, 1)
    grouped = g.node(
        "Relu", [g.conv(project, 12, 12, 3, group=3, dilations=[2, 2], pads=[2, 2, 2, 2])]
    )
    same = g.conv(grouped, 12, 12, 3, strides=[2, 2], auto_pad="SAME_UPPER")
    pooled = g.node("AveragePool", [grouped], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    merged = g.node("Add", [same, g.conv(pooled, 12, 12, 1)])
    head = g.node("Clip", [g.conv(merged, 12, 32, 1), low, high])
    flat = g.node("Flatten", [g.node("GlobalAveragePool", [head])], axis=1)
    weight, bias = g.rng.normal(0, 0.3, (classes, 32)), g.rng.normal(0, 0.1, classes)
    out = g.node("Gemm", [flat, g.const(weight), g.const(bias)], transB=1)
    return g.model(out, [1, 3, size, size])


def pooling_zoo(height: int = 40, width: int = 47) -> onnx.ModelProto:
    """Pooling at the borders: MaxPool with pads and ceil_mode's overhang, a
    dilated MaxPool, AveragePool with and without count_include_pad (one with an
    overhang), Concat, Add and a per-channel constant; the output is a map."""
    g = GraphBuilder(seed=2)
    act = g.node("Relu", [g.conv("input", 3, 6, 3, pads=[1, 0, 2, 1])])
    pool = g.node(
        "MaxPool", [act], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1
    )
    avg_excl = g.node(
        "AveragePool", [pool], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0
    )
    avg_incl = g.node(
        "AveragePool",
        [pool],
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 0, 0],
        count_include_pad=1,
        ceil_mode=1,
    )
    dilated = g.node("MaxPool", [pool], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])
    both = g.node("Concat", [avg_excl, dilated], axis=1)
    summed = g.node(
        "Add",
        [g.conv(both, 12, 6, 3, pads=[1, 1, 1, 1], strides=[2, 2]), g.conv(avg_incl, 6, 6, 1)],
    )
    out = g.node("Add", [summed, g.const(g.rng.normal(0, 1, (6, 1, 1)))])
    return g.model(out, [1, 3, height, width])


def inception_like(height: int = 30, width: int = 37) -> onnx.ModelProto:
    """Sibling convolutions of one input joined by a Concat, as in SqueezeNet's
    fire modules and Inception blocks: 1x1, 3x3, 5x5, an asymmetric 3x3, a
    dilated 3x3 and an even 4x4 kernel with SAME_UPPER padding, twice in a row
    (the second block after a strided convolution)."""
    g = GraphBuilder(seed=5)
    x = g.node("Relu", [g.conv("input", 3, 8, 3, pads=[1, 1, 1, 1])])
    for block in range(2):
        branches = [
            g.node("Relu", [g.conv(x, 8, 4, 1)]),
            g.node("Relu", [g.conv(x, 8, 4, 3, pads=[1, 1, 1, 1])]),
            g.conv(x, 8, 2, 5, pads=[2, 2, 2, 2]),
            g.node("Clip", [g.conv(x, 8, 2, 3, pads=[0, 0, 2, 2]), g.const(0.0), g.const(6.0)]),
            g.conv(x, 8, 2, 3, dilations=[2, 2], pads=[2, 2, 2, 2]),
            g.conv(x, 8, 2, 4, auto_pad="SAME_UPPER"),
        ]
        x = g.conv(g.node("Concat", branches, axis=1), 16, 8, 1)
        if block == 0:
            x = g.node("Relu", [g.conv(x, 8, 8, 3, strides=[2, 2], pads=[1, 1, 1, 1])])
    out = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    return g.model(out, [1, 3, height, width])


def with_sigmoid(size: int = 24) -> onnx.ModelProto:
    """A swish activation (x * sigmoid(x)): operators the engine does not support."""
    g = GraphBuilder(seed=3)
    conv = g.conv("input", 3, 4, 3, pads=[1, 1, 1, 1])
    swish = g.node("Mul", [conv, g.node("Sigmoid", [conv])])
    out = g.node("Flatten", [g.node("GlobalAveragePool", [swish])], axis=1)
    return g.model(out, [1, 3, size, size])


def broadcast_add(size: int = 24) -> onnx.ModelProto:
    """A map plus its own global average ([N, C, 1, 1], broadcast over the map):
    supported operators, but a change reaches the whole map through the pooled
    term, so the engine runs such a model in full (and says why)."""
    g = GraphBuilder(seed=4)
    act = g.node("Relu", [g.conv("input", 3, 4, 3, pads=[1, 1, 1, 1])])
    pooled = g.conv(g.node("GlobalAveragePool", [act]), 4, 4, 1)
    summed = g.node("Add", [act, pooled])
    out = g.node("Flatten", [g.node("GlobalAveragePool", [g.conv(summed, 4, 5, 3)])], axis=1)
    return g.model(out, [1, 3, size, size])
