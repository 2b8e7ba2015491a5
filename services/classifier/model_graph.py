"""Rewrite a SqueezeNet 1.1 ONNX file into the form the classifier runs.

Accepts the ONNX Model Zoo file (opset 7, input fixed at 1x3x224x224, a 13x13
AveragePool, Dropout, Reshape) and the project's rebuilt one (opset 13,
GlobalAveragePool, Flatten). The result, for both:
- input `data` is [N, 3, H, W] with N, H and W dynamic: the network is fully
  convolutional, so it can see the whole image at its own aspect ratio;
- the pooling at the end is a GlobalAveragePool (a fixed 13x13 kernel would
  only be right for 224x224 inputs) followed by Flatten;
- MaxPool rounds up (`ceil_mode=1`), as Caffe and Gluon, where the weights come
  from, did; at 224x224 this changes nothing, at other sizes it keeps the grid;
- Dropout, the identity at inference, is gone;
- two outputs: the 1000 class scores and the last convolution's map
  [N, 1000, h, w] (before ReLU), from which class activation maps are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

TARGET_OPSET = 13


@dataclass(frozen=True)
class PreparedModel:
    model: onnx.ModelProto
    input_name: str
    scores_output: str
    class_map_output: str
    # Bias of the last convolution: CAM = class map - bias, i.e. sum_k w_ck f_k.
    class_bias: np.ndarray
    num_classes: int


class ModelFormatError(ValueError):
    pass


def _consumers(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if tensor in n.input]


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    for out in graph.output:
        if out.name == old:
            out.name = new


def prepare_model(source: Path | onnx.ModelProto) -> PreparedModel:
    model = onnx.load(str(source)) if isinstance(source, (str, Path)) else onnx.ModelProto()
    if not isinstance(source, (str, Path)):
        model.CopyFrom(source)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}

    # Dropout is the identity at inference: splice it out.
    for node in [n for n in graph.node if n.op_type == "Dropout"]:
        _rename_input(graph, node.output[0], node.input[0])
        graph.node.remove(node)

    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        raise ModelFormatError("no convolution in the model: not a SqueezeNet")
    last_conv = convs[-1]
    weight = numpy_helper.to_array(initializers[last_conv.input[1]])
    num_classes = int(weight.shape[0])
    bias = (
        numpy_helper.to_array(initializers[last_conv.input[2]]).astype(np.float32)
        if len(last_conv.input) > 2
        else np.zeros(num_classes, np.float32)
    )

    pools = [n for n in graph.node if n.op_type in ("AveragePool", "GlobalAveragePool")]
    if len(pools) != 1:
        raise ModelFormatError("expected exactly one average pooling at the end of the network")
    pool = pools[0]
    if pool.op_type == "AveragePool":
        pool.op_type = "GlobalAveragePool"
        del pool.attribute[:]

    # Whatever follows the pool (Reshape or Flatten) becomes Flatten(axis=1).
    after = _consumers(graph, pool.output[0])
    if len(after) != 1 or after[0].op_type not in ("Reshape", "Flatten"):
        raise ModelFormatError("expected a Reshape or Flatten after the pooling")
    flatten = after[0]
    if flatten.op_type == "Reshape":
        flatten.op_type = "Flatten"
        del flatten.input[1:]
    del flatten.attribute[:]
    flatten.attribute.append(helper.make_attribute("axis", 1))

    for node in graph.node:
        if node.op_type == "MaxPool":
            kept = [a for a in node.attribute if a.name != "ceil_mode"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("ceil_mode", 1)])

    # Shapes recorded for 224x224 would contradict dynamic inputs.
    del graph.value_info[:]
    input_name = graph.input[0].name
    _set_dims(graph.input[0], ["N", 3, "H", "W"])
    scores_output = flatten.output[0]
    class_map_output = last_conv.output[0]
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(
                scores_output, onnx.TensorProto.FLOAT, ["N", num_classes]
            ),
            helper.make_tensor_value_info(
                class_map_output, onnx.TensorProto.FLOAT, ["N", num_classes, "h", "w"]
            ),
        ]
    )
    # Older files list initializers as graph inputs too; opset >= 9 needs not.
    graph_inputs = [i for i in graph.input if i.name not in initializers]
    del graph.input[:]
    graph.input.extend(graph_inputs)

    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", TARGET_OPSET))
    model.ir_version = max(model.ir_version, 7)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelFormatError(f"the rewritten model is not valid ONNX: {exc}") from exc
    return PreparedModel(
        model=model,
        input_name=input_name,
        scores_output=scores_output,
        class_map_output=class_map_output,
        class_bias=bias,
        num_classes=num_classes,
    )


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, int):
            entry.dim_value = dim
        else:
            entry.dim_param = dim
