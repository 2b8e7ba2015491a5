"""Model cards and small ONNX classifiers for the tests.

- `models_dir_for_tests(squeezenet_onnx)`: the repository's built-in cards, copied
  with absolute paths, SqueezeNet's pointing at the shared test file
  (IC_TEST_MODEL) instead of a copy in the repository; the classifier serves
  it as its IC_MODELS_DIR.
- `write_card(...)`: a card file for a model built in a test.
- `byo_classifier()`: a bring-your-own model as a user would bring it: NHWC
  input, BGR channel order, 5 custom labels, a GAP + Gemm head. Its features
  are colour detectors, so a test knows where the evidence for each class is.
- `mlp_head_classifier()`: a classifier with no CAM structure (the scores come
  from a small MLP on the pooled features).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from services.classifier.cards import ModelCard, read_card
from tests.support.processes import ARTIFACTS, REPO

BUILTIN_CARDS = REPO / "models"
SQUEEZENET = "squeezenet1.1"
EFFICIENTNET = "efficientnet-lite0"

BYO_LABELS = ["red square", "blue square", "green square", "bright patch", "nothing"]
BYO_SIZE = 64  # the model's fixed input side


def builtin_card(name: str, onnx_path: Path | None = None) -> ModelCard:
    """A built-in card, optionally with its ONNX file elsewhere (the shared test model)."""
    card = read_card(BUILTIN_CARDS / f"{name}.json")
    return dataclasses.replace(card, onnx=onnx_path) if onnx_path else card


def models_dir_for_tests(squeezenet_onnx: Path, directory: Path | None = None) -> Path:
    """A models folder of the built-in cards with absolute paths (SqueezeNet's file: the
    given one; the others where `make model` puts them)."""
    directory = directory or ARTIFACTS / "test-models"
    directory.mkdir(parents=True, exist_ok=True)
    for card_path in sorted(BUILTIN_CARDS.glob("*.json")):
        data = json.loads(card_path.read_text(encoding="utf-8"))
        onnx_file = (
            squeezenet_onnx if data["name"] == SQUEEZENET else card_path.parent / data["onnx"]
        )
        data["onnx"] = str(Path(onnx_file).resolve())
        if isinstance(data["labels"], str):
            data["labels"] = str((card_path.parent / data["labels"]).resolve())
        (directory / card_path.name).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return directory


def write_card(path: Path, **fields) -> Path:
    """A card file with sensible defaults for a small test model; `fields` override them
    (`input=` replaces the whole input object, `input_fields=` merges into it)."""
    input_fields = fields.pop("input_fields", {})
    card = {
        "name": path.stem,
        "title": f"Test model {path.stem}",
        "onnx": f"{path.stem}.onnx",
        "labels": BYO_LABELS,
        "input": {
            "size": [BYO_SIZE, BYO_SIZE],
            "layout": "NHWC",
            "color": "BGR",
            "scale": 1 / 255,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
        },
        "outputs": "logits",
        "licence": "MIT",
    }
    card.update(fields)
    card["input"] = {**card["input"], **input_fields}
    path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    return path


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


# Colour detectors over the network's channels, which are B, G, R (the card says BGR):
# each fires (ReLU) where one channel clearly beats the other two.
DETECTORS = np.array(
    [
        [-0.5, -0.5, 1.0],  # red
        [1.0, -0.5, -0.5],  # blue
        [-0.5, 1.0, -0.5],  # green
        [1 / 3, 1 / 3, 1 / 3],  # brightness
    ],
    np.float32,
)
DETECTOR_BIAS = np.array([-0.3, -0.3, -0.3, -0.85], np.float32)
# Class scores from the pooled detectors: each colour class reads its detector.
CLASS_WEIGHTS = np.array(
    [
        [60, 0, 0, 0],
        [0, 60, 0, 0],
        [0, 0, 60, 0],
        [0, 0, 0, 60],
        [0, 0, 0, 0],
    ],
    np.float32,
)
CLASS_BIAS = np.array([0, 0, 0, 0, 1.0], np.float32)


def byo_classifier(
    labels: int = len(BYO_LABELS), padding_bytes: int = 0, opset: int = 13
) -> onnx.ModelProto:
    """NHWC [N, 64, 64, 3] -> Transpose -> 1x1 Conv (detectors) -> ReLU -> MaxPool 4
    -> GlobalAveragePool -> Flatten -> Gemm -> [N, labels] scores.

    `padding_bytes` adds an unused initializer of that size (a file over a size limit)."""
    weights = (
        CLASS_WEIGHTS[:labels]
        if labels <= len(CLASS_WEIGHTS)
        else np.resize(CLASS_WEIGHTS, (labels, 4))
    )
    bias = np.resize(CLASS_BIAS, labels)
    nodes = [
        helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "det_w", "det_b"], ["det"]),
        helper.make_node("Relu", ["det"], ["det_relu"]),
        helper.make_node(
            "MaxPool", ["det_relu"], ["features"], kernel_shape=[4, 4], strides=[4, 4]
        ),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "cls_w", "cls_b"], ["scores"], transB=1),
    ]
    initializers = [
        _const("det_w", DETECTORS[:, :, None, None]),
        _const("det_b", DETECTOR_BIAS),
        _const("cls_w", weights),
        _const("cls_b", bias),
    ]
    if padding_bytes:
        initializers.append(_const("unused_padding", np.zeros(padding_bytes // 4, np.float32)))
    graph = helper.make_graph(
        nodes,
        "byo",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", BYO_SIZE, BYO_SIZE, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", labels])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# The card's `input` for mlp_head_classifier(): 32x32, RGB, scaled to 0..1 and centred.
MLP_HEAD_INPUT = {
    "size": [32, 32],
    "layout": "NCHW",
    "color": "RGB",
    "scale": 1 / 255,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
}


def mlp_head_classifier() -> onnx.ModelProto:
    """NCHW [N, 3, 32, 32] -> Conv -> ReLU -> GAP -> Gemm -> ReLU -> Gemm -> [N, 3]:
    the scores are not a linear map of the pooled features, so no CAM."""
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["features"]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "hidden_w"], ["hidden"], transB=1),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"]),
        helper.make_node("Gemm", ["hidden_relu", "out_w"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp_head",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
        initializer=[
            _const("conv_w", rng.normal(0, 0.3, (8, 3, 3, 3))),
            _const("hidden_w", rng.normal(0, 0.3, (6, 8))),
            _const("out_w", rng.normal(0, 0.3, (3, 6))),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def byo_photo(width: int = 200, height: int = 160, box=(120, 20, 168, 68)) -> np.ndarray:
    """A grey RGB image with a red square (x0, y0, x1, y1): the evidence for "red square"."""
    image = np.full((height, width, 3), 110, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = (220, 30, 30)
    return image
