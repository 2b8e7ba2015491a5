"""The ONNX Runtime sessions the incremental runtime calls.

- a *kernel* per convolution or average pooling, with the point-wise ops after
  it (and a global average pool, when it alone reads the map) fused in: the
  same weights and attributes but no padding and no ceil_mode, run on windows
  gathered from zero-padded caches, so the context a patch's kernel reads is
  part of its input (max pooling needs no session: NumPy does it);
- a *branches* kernel for sibling convolutions of one input and their Concat;
- the *activations* session: the whole model, returning every tensor the
  runtime caches for a base image;
- a *tail* per cut point: the rest of the network from a set of whole maps, run
  as one batch once the changed regions cover every map.
Kernels take and give maps channels-last ([N, H, W, C]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from services.classifier.incremental.plan import GraphPlan, Op


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def subgraph_session(
    plan: GraphPlan,
    nodes: Sequence[onnx.NodeProto],
    inputs: Iterable[str],
    outputs: Iterable[str],
    threads: int,
    constants: Sequence[onnx.TensorProto] = (),
) -> ort.InferenceSession:
    """A session running `nodes` from `inputs` (float tensors of any shape) to
    `outputs`, with the model's weights they use and `constants` of its own."""
    used = {name for node in nodes for name in node.input}
    initializers = [i for i in plan.model.graph.initializer if i.name in used]
    initializers += list(constants)
    graph = helper.make_graph(
        list(nodes),
        "incremental_part",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in outputs],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=list(plan.model.opset_import))
    model.ir_version = plan.model.ir_version
    return ort.InferenceSession(
        model.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )


def unpadded_node(op: Op, input_name: str, output_name: str) -> onnx.NodeProto:
    """The sliding op with its padding removed: it then reads only what it is given."""
    node = onnx.NodeProto()
    node.CopyFrom(op.node)
    node.input[0] = input_name
    del node.output[:]
    node.output.append(output_name)
    kept = [a for a in node.attribute if a.name not in ("pads", "auto_pad", "ceil_mode")]
    if op.kind == "avgpool":
        # Sums over whole windows; the divisor is corrected afterwards.
        kept = [a for a in kept if a.name != "count_include_pad"]
    del node.attribute[:]
    node.attribute.extend(kept)
    return node


def kernel_session(plan: GraphPlan, ops: Sequence[Op], threads: int) -> ort.InferenceSession:
    """Kernel for a sliding op and the point-wise ops after it, channels last:
    input "x" [N, H, W, C] and output "y" [N, h, w, C]. ONNX Runtime folds both
    transposes into the layout changes its own blocked convolution makes anyway."""
    nodes = [helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2])]
    nodes.append(unpadded_node(ops[0], "x_nchw", ops[0].output))
    for op in ops[1:]:
        nodes.append(op.node)
    nodes.append(helper.make_node("Transpose", [ops[-1].output], ["y"], perm=[0, 2, 3, 1]))
    return subgraph_session(plan, nodes, ["x"], ["y"], threads)


def branches_session(
    plan: GraphPlan, branches: Sequence[Sequence[Op]], concat: Op, threads: int
) -> ort.InferenceSession:
    """Kernel for sibling stride-1 convolutions of one input (each with its
    point-wise ops) and the Concat of their outputs, channels last like
    kernel_session. Input "x" is the window the widest kernel reads around the
    output region; each branch takes the part of it its own kernel reads."""
    axes = [plan.sliding_axes(chain[0], (64, 64)) for chain in branches]
    reach_before = [max(a[i].pad_begin for a in axes) for i in range(2)]
    reach_after = [max(a[i].extent - 1 - a[i].pad_begin for a in axes) for i in range(2)]
    nodes = [helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2])]
    constants = []
    for index, (chain, own) in enumerate(zip(branches, axes, strict=True)):
        starts = [reach_before[i] - own[i].pad_begin for i in range(2)]
        # Slice ends counted from the end of the window: its size varies by batch.
        trims = [reach_after[i] - (own[i].extent - 1 - own[i].pad_begin) for i in range(2)]
        ends = [-trim if trim else np.iinfo(np.int64).max for trim in trims]
        names = [f"branch{index}_{what}" for what in ("starts", "ends", "axes")]
        for name, values in zip(names, (starts, ends, [2, 3]), strict=True):
            constants.append(numpy_helper.from_array(np.array(values, np.int64), name))
        nodes.append(helper.make_node("Slice", ["x_nchw", *names], [f"branch{index}_x"]))
        nodes.append(unpadded_node(chain[0], f"branch{index}_x", chain[0].output))
        nodes.extend(op.node for op in chain[1:])
    nodes.append(concat.node)
    nodes.append(helper.make_node("Transpose", [concat.output], ["y"], perm=[0, 2, 3, 1]))
    return subgraph_session(plan, nodes, ["x"], ["y"], threads, constants)


def tail_session(
    plan: GraphPlan,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    channels_last: set[str],
    threads: int,
) -> ort.InferenceSession:
    """The rest of the network; the inputs in `channels_last` come as [N, H, W, C]
    and are named with a ":nhwc" suffix."""
    head = [
        helper.make_node("Transpose", [f"{name}:nhwc"], [name], perm=[0, 3, 1, 2])
        for name in inputs
        if name in channels_last
    ]
    names = [f"{n}:nhwc" if n in channels_last else n for n in inputs]
    return subgraph_session(plan, [*head, *nodes], names, [plan.output_name], threads)


def activations_session(
    plan: GraphPlan, outputs: Sequence[str], threads: int
) -> ort.InferenceSession:
    nodes = [op.node for op in plan.ops]
    return subgraph_session(plan, nodes, [plan.input_name], outputs, threads)


def average_divisor_correction(
    plan: GraphPlan, op: Op, margins: tuple[tuple[int, int], tuple[int, int]], size: tuple[int, int]
) -> np.ndarray | None:
    """AveragePool's true divisor against the kernel's k*k, per output position.

    The kernel divides every window by its full size; the real op divides by
    what count_include_pad, pads and ceil_mode make of it at each position. The
    ratio, computed once by running both on a map of ones, turns one into the
    other exactly as ONNX Runtime defines it. None when it is 1 everywhere.
    """
    ones = np.ones((1, 1, *size), np.float32)
    real = subgraph_session(plan, [_renamed(op.node, "x", "y")], ["x"], ["y"], 1)
    unpadded = subgraph_session(plan, [unpadded_node(op, "x", "y")], ["x"], ["y"], 1)
    (my_b, my_e), (mx_b, mx_e) = margins
    padded = np.pad(ones, ((0, 0), (0, 0), (my_b, my_e), (mx_b, mx_e)))
    true_mean = real.run(None, {"x": ones})[0][0, 0]
    window_mean = unpadded.run(None, {"x": padded})[0][0, 0]
    if true_mean.shape != window_mean.shape:
        raise ValueError(
            f"{op.name}: padded kernel gives {window_mean.shape}, op {true_mean.shape}"
        )
    ratio = np.divide(
        true_mean, window_mean, out=np.zeros_like(true_mean), where=window_mean > 0
    ).astype(np.float32)
    return None if np.all(ratio == 1.0) else ratio


def _renamed(node: onnx.NodeProto, input_name: str, output_name: str) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.input[0] = input_name
    del copy.output[:]
    copy.output.append(output_name)
    return copy
