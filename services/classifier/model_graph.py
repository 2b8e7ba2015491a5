"""An ONNX file, checked and rewritten into the form the classifier runs.

`prepare_model(source, spec)` takes the ONNX file a model card names and the
card's input description, and returns a `PreparedModel`, or raises
`ModelFormatError` saying why the graph is not an image classifier the card
can drive. Checks: one image input of rank 4 with 1 or 3 channels where the
card's layout puts them, float32; a first output of rank 2 ([N, classes]); a
fixed input size that matches the card's.

Rewrites, each for a reason that holds for any model:
- the batch dimension is dynamic (exports often fix it at 1), and a Reshape to
  [1, -1] (that batch of one, baked in) becomes Flatten(axis=1);
- when the card resizes by the shorter side with no crop (a fully
  convolutional model seeing the whole image), height and width are dynamic,
  and an AveragePool whose kernel covers the whole map at the exported size
  becomes the GlobalAveragePool it stood for;
- Dropout (the identity at inference) is spliced out;
- graphs of opset < 10 could not say that MaxPool rounds up; a card with
  `max_pool_ceil` says so for them (Caffe- and Gluon-trained weights, e.g. the
  ONNX Model Zoo's SqueezeNet 1.1) and the graph is converted to opset 13;
- the CAM head's feature map (services/classifier/cam_head.py) becomes a
  second output, read only when CAMs are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import helper, shape_inference, version_converter

from services.classifier.cam_head import CamHead, GraphIndex, attribute, find_cam_head
from services.classifier.cards import InputSpec

CEIL_MODE_OPSET = 10  # MaxPool's ceil_mode exists from this opset on
CONVERTED_OPSET = 13
DEFAULT_MAX_MODEL_BYTES = 512 << 20


class ModelFormatError(ValueError):
    pass


@dataclass(frozen=True)
class GraphInput:
    name: str
    layout: str  # "NCHW" or "NHWC"
    channels: int  # 1 or 3
    # (h, w) when the graph fixes them (after the rewrites), else None.
    fixed_size: tuple[int, int] | None


@dataclass(frozen=True)
class PreparedModel:
    model: onnx.ModelProto
    input: GraphInput
    scores_output: str
    # Known from the graph's output shape or its last layer; None if neither says.
    num_classes: int | None
    cam: CamHead | None
    cam_reason: str


def load_model_file(path: Path, max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> onnx.ModelProto:
    """The parsed ONNX file; ModelFormatError when missing, too large or not ONNX."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFormatError(f"the ONNX file {path} does not exist (run `make model`?)") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read the ONNX file {path}: {exc.strerror}") from None
    if size > max_bytes:
        raise ModelFormatError(
            f"the ONNX file {path} is {size} bytes; the limit is {max_bytes} (IC_MAX_MODEL_BYTES)"
        )
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: all mean "not ONNX"
        raise ModelFormatError(
            f"{path} is not a valid ONNX file ({type(exc).__name__}: {exc})"
        ) from None


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str | None]:
    if not value_info.type.HasField("tensor_type"):
        return []
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return []
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in tensor_type.shape.dim
    ]


def _set_dims(value_info: onnx.ValueInfoProto, dims: list[int | str | None]) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for dim in dims:
        entry = shape.dim.add()
        if isinstance(dim, int):
            entry.dim_value = dim
        elif dim:
            entry.dim_param = dim


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    for out in graph.output:
        if out.name == old:
            out.name = new


def _static_shapes(model: onnx.ModelProto, input_name: str, hw: tuple[int, int], layout: str):
    """Tensor shapes at batch 1 and input size hw; {} when inference fails."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph_input = next(i for i in probe.graph.input if i.name == input_name)
    dims = _dims(graph_input)
    if layout == "NCHW":
        _set_dims(graph_input, [1, dims[1], hw[0], hw[1]])
    else:
        _set_dims(graph_input, [1, hw[0], hw[1], dims[3]])
    try:
        inferred = shape_inference.infer_shapes(probe).graph
    except Exception:  # custom ops, odd graphs: the analysis then works without shapes
        return {}
    return {
        info.name: _dims(info) for info in [*inferred.value_info, *inferred.input, *inferred.output]
    }


def check_input(graph: onnx.GraphProto, spec: InputSpec) -> GraphInput:
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelFormatError(
            f"the graph has {len(inputs)} inputs ({names}); an image classifier takes one"
        )
    graph_input = inputs[0]
    elem_type = graph_input.type.tensor_type.elem_type
    if elem_type != onnx.TensorProto.FLOAT:
        raise ModelFormatError(
            f"the input {graph_input.name!r} is {onnx.TensorProto.DataType.Name(elem_type)}, "
            "not FLOAT (float32)"
        )
    dims = _dims(graph_input)
    if len(dims) != 4:
        raise ModelFormatError(
            f"the input {graph_input.name!r} has rank {len(dims)} ({dims}); an image "
            "classifier's input has rank 4"
        )
    channel_axis, spatial = (1, dims[2:4]) if spec.layout == "NCHW" else (3, dims[1:3])
    channels = dims[channel_axis]
    if channels not in (1, 3):
        raise ModelFormatError(
            f"the input {graph_input.name!r} has shape {dims}: with layout {spec.layout} "
            f"that is {channels} channels; an image classifier takes 1 or 3 "
            "(is the card's layout right?)"
        )
    fixed = tuple(spatial) if all(isinstance(d, int) and d > 0 for d in spatial) else None
    return GraphInput(graph_input.name, spec.layout, channels, fixed)  # type: ignore[arg-type]


def check_output(graph: onnx.GraphProto) -> tuple[str, int | None]:
    if not graph.output:
        raise ModelFormatError("the graph has no output")
    output = graph.output[0]
    dims = _dims(output)
    if dims and len(dims) != 2:
        raise ModelFormatError(
            f"the first output {output.name!r} has shape {dims}; an image classifier's "
            "scores are [N, classes]"
        )
    classes = dims[1] if dims and isinstance(dims[1], int) and dims[1] > 0 else None
    return output.name, classes


def _splice_dropout(graph: onnx.GraphProto) -> None:
    for node in [n for n in graph.node if n.op_type == "Dropout"]:
        _rename_input(graph, node.output[0], node.input[0])
        graph.node.remove(node)


def _dynamic_batch(graph: onnx.GraphProto, graph_input: onnx.ValueInfoProto) -> None:
    dims = _dims(graph_input)
    _set_dims(graph_input, ["N", *dims[1:]])
    for output in graph.output:
        out_dims = _dims(output)
        if out_dims:
            _set_dims(output, ["N", *out_dims[1:]])
    index = GraphIndex(graph)
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        shape = index.constant(node.input[1])
        if shape is not None and shape.ndim == 1 and len(shape) == 2 and shape[0] == 1:
            node.op_type = "Flatten"
            del node.input[1:]
            del node.attribute[:]
            node.attribute.append(helper.make_attribute("axis", 1))


def _globalise_pools(graph: onnx.GraphProto, shapes: dict[str, list]) -> None:
    for node in graph.node:
        if node.op_type != "AveragePool":
            continue
        shape = shapes.get(node.input[0])
        kernel = attribute(node, "kernel_shape")
        pads = attribute(node, "pads") or []
        if (
            shape
            and len(shape) == 4
            and kernel
            and list(kernel) == list(shape[2:])
            and not any(pads)
        ):
            node.op_type = "GlobalAveragePool"
            del node.attribute[:]


def _max_pools_round_up(model: onnx.ModelProto) -> onnx.ModelProto:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < CEIL_MODE_OPSET:
        try:
            model = version_converter.convert_version(model, CONVERTED_OPSET)
        except Exception as exc:
            raise ModelFormatError(
                f"max_pool_ceil needs opset >= {CEIL_MODE_OPSET}; converting this opset "
                f"{opset} graph failed: {exc}"
            ) from None
    for node in model.graph.node:
        if node.op_type == "MaxPool":
            kept = [a for a in node.attribute if a.name != "ceil_mode"]
            del node.attribute[:]
            node.attribute.extend([*kept, helper.make_attribute("ceil_mode", 1)])
    return model


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {out.name for out in graph.output}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def prepare_model(
    source: Path | onnx.ModelProto, spec: InputSpec, max_pool_ceil: bool = False
) -> PreparedModel:
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
    else:
        model = load_model_file(Path(source))
    graph = model.graph
    # Older files list initializers as graph inputs too (needed before IR 4).
    initializers = {init.name for init in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    del graph.input[:]
    graph.input.extend(real_inputs)
    model.ir_version = max(model.ir_version, 4)

    graph_input = check_input(graph, spec)
    scores_output, num_classes = check_output(graph)
    probe_hw = graph_input.fixed_size or spec.fixed_size or (spec.short_side,) * 2
    shapes = _static_shapes(model, graph_input.name, probe_hw, spec.layout)

    if max_pool_ceil:
        model = _max_pools_round_up(model)
        graph = model.graph
    _splice_dropout(graph)
    input_proto = next(i for i in graph.input if i.name == graph_input.name)
    _dynamic_batch(graph, input_proto)
    wanted = spec.fixed_size
    if wanted is None:
        # Fully convolutional: any height and width.
        _globalise_pools(graph, shapes)
        channels = graph_input.channels
        nchw = spec.layout == "NCHW"
        _set_dims(input_proto, ["N", channels, "H", "W"] if nchw else ["N", "H", "W", channels])
        graph_input = GraphInput(graph_input.name, spec.layout, graph_input.channels, None)
    elif graph_input.fixed_size and graph_input.fixed_size != wanted:
        got_h, got_w = graph_input.fixed_size
        raise ModelFormatError(
            f"the card feeds {wanted[1]}x{wanted[0]} (w x h) but the graph's input is fixed "
            f"at {got_w}x{got_h}"
        )
    # Shapes recorded for the exported size would contradict dynamic dimensions.
    del graph.value_info[:]
    _drop_unused_initializers(graph)

    cam, cam_reason = find_cam_head(graph, scores_output, shapes)
    if cam is not None:
        if num_classes is not None and cam.weights.shape[0] != num_classes:
            cam, cam_reason = (
                None,
                (
                    f"the layer before the scores has {cam.weights.shape[0]} outputs, "
                    f"the scores {num_classes}"
                ),
            )
        else:
            num_classes = num_classes or int(cam.weights.shape[0])
            if cam.features not in {o.name for o in graph.output}:
                graph.output.append(
                    helper.make_tensor_value_info(cam.features, onnx.TensorProto.FLOAT, [None] * 4)
                )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelFormatError(f"the graph is not valid ONNX: {exc}") from None
    return PreparedModel(
        model=model,
        input=graph_input,
        scores_output=scores_output,
        num_classes=num_classes,
        cam=cam,
        cam_reason=cam_reason,
    )
