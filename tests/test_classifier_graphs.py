"""Loading models from cards: the CAM head found by graph analysis, the card's
preprocessing, every way a model can be refused, and the registry that keeps
serving the others."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from common.errors import NotFound
from services.classifier.cards import read_card
from services.classifier.core import CamUnsupported, ModelSettings
from services.classifier.model_graph import ModelFormatError
from services.classifier.onnx_model import load_model
from services.classifier.preprocess import Preprocessor
from services.classifier.registry import ModelRegistry, ModelUnavailable
from tests.support.served_models import (
    BYO_LABELS,
    CLASS_WEIGHTS,
    DETECTOR_BIAS,
    DETECTORS,
    byo_classifier,
    byo_photo,
    mlp_head_classifier,
    write_card,
)

RED_BOX = (120, 20, 168, 68)


def save(model: onnx.ModelProto, path) -> None:
    onnx.save(model, str(path))


@pytest.fixture
def byo_card(tmp_path):
    save(byo_classifier(), tmp_path / "byo.onnx")
    return read_card(write_card(tmp_path / "byo.json"))


def peak(image: np.ndarray) -> tuple[float, float]:
    """The centre of the map's brightest pixels (a plateau has no single argmax)."""
    ys, xs = np.nonzero(image >= image.max() - 5)
    return float(xs.mean()), float(ys.mean())


def inside(point, box) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= point[0] < x1 and y0 <= point[1] < y1


def test_a_bring_your_own_model_nhwc_bgr_with_a_gap_gemm_head(byo_card):
    model = load_model(byo_card)
    assert model.cam and model.cam_head.structure == "GlobalAveragePool -> Gemm"
    assert model.cam_head.weights.shape == (5, 4) and model.num_classes == 5
    result = model.classify([byo_photo()], top_k=5, cam_class_ids=[0, 1]).results[0]
    assert result.top[0].label == "red square" and result.top[0].probability > 0.5
    red, blue = result.cams
    assert red.image.shape == (160, 200) and red.seen is None
    assert inside(peak(red.image), RED_BOX)
    x0, y0, x1, y1 = RED_BOX
    on_square = red.image[y0:y1, x0:x1].mean()
    outside = (red.image.astype(float).sum() - red.image[y0:y1, x0:x1].sum()) / (
        red.image.size - (x1 - x0) * (y1 - y0)
    )
    assert on_square > 200 and outside < 20
    # Nothing blue anywhere: a flat map, all zeros.
    assert blue.image.max() == 0


def test_the_cards_colour_order_is_what_the_network_gets(byo_card):
    """Read as RGB, the red square reaches the network's blue detector."""
    swapped = dataclasses.replace(byo_card, input=dataclasses.replace(byo_card.input, color="RGB"))
    top = load_model(swapped).classify([byo_photo()], top_k=1).results[0].top[0]
    assert top.label == "blue square"


def test_preprocessing_writes_the_cards_layout_colour_and_statistics(byo_card):
    spec = dataclasses.replace(byo_card.input, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))
    pixel = np.zeros((4, 8, 3), np.uint8)
    pixel[..., 0], pixel[..., 1], pixel[..., 2] = 255, 51, 0  # R, G, B
    nhwc = Preprocessor(spec).to_tensor([pixel])
    assert nhwc.shape == (1, 64, 64, 3)
    # Channel 0 is blue (BGR), with the card's first mean and std.
    expected = [(0 - 0.1) / 0.5, (0.2 - 0.2) / 0.25, (1.0 - 0.3) / 2.0]
    np.testing.assert_allclose(nhwc[0, 10, 10], expected, atol=1e-5)
    nchw = Preprocessor(dataclasses.replace(spec, layout="NCHW")).to_tensor([pixel])
    np.testing.assert_allclose(nchw[0].transpose(1, 2, 0), nhwc[0], atol=1e-6)
    grey = Preprocessor(spec, channels=1).to_tensor([pixel])
    luma = (0.299 * 255 + 0.587 * 51) / 255
    assert grey.shape == (1, 64, 64, 1)
    assert grey[0, 3, 3, 0] == pytest.approx((luma - 0.1) / 0.5, abs=0.01)


def test_a_centre_crop_is_where_the_card_says(byo_card):
    spec = dataclasses.replace(byo_card.input, size=None, short_side=64, crop=(48, 40))
    geometry = Preprocessor(spec).geometry(200, 100)  # resized to 128x64, then the crop
    assert (geometry.resized_width, geometry.resized_height) == (128, 64)
    assert geometry.crop == (44, 8, 40, 48) and geometry.cropped


def keras_like_classifier() -> onnx.ModelProto:
    """NHWC all the way: MatMul over channels, ReduceMean over H and W, MatMul + Add."""
    nodes = [
        helper.make_node("MatMul", ["pixels", "det_w"], ["det_mm"]),
        helper.make_node("Add", ["det_mm", "det_b"], ["det"]),
        helper.make_node("Relu", ["det"], ["features"]),
        helper.make_node("ReduceMean", ["features"], ["pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "cls_w"], ["logits"]),
        helper.make_node("Add", ["cls_b", "logits"], ["scores_raw"]),
        helper.make_node("Softmax", ["scores_raw"], ["scores"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "keras_like",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 64, 64, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 5])],
        initializer=[
            numpy_helper.from_array(DETECTORS.T.copy(), "det_w"),
            numpy_helper.from_array(DETECTOR_BIAS, "det_b"),
            numpy_helper.from_array(CLASS_WEIGHTS.T.copy(), "cls_w"),
            numpy_helper.from_array(np.array([0, 0, 0, 0, 1], np.float32), "cls_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_reduce_mean_and_matmul_with_probabilities_out(tmp_path):
    """A Keras-style export: NHWC features, the batch fixed at 1, softmax in the graph."""
    save(keras_like_classifier(), tmp_path / "keras.onnx")
    card = read_card(write_card(tmp_path / "keras.json", outputs="probabilities"))
    model = load_model(card)
    assert model.cam_head.structure == "ReduceMean -> MatMul"
    assert model.cam_head.channel_axis == 3
    batch = model.classify([byo_photo()] * 3, top_k=1, cam_class_ids=[0])
    for result in batch.results:  # the batch dimension was made dynamic
        assert result.top[0].label == "red square"
        assert inside(peak(result.cams[0].image), RED_BOX)
    probabilities = model.classify([byo_photo()], all_probabilities=True).results[0].probabilities
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_no_cam_structure_means_no_cams_with_the_reason(tmp_path):
    save(mlp_head_classifier(), tmp_path / "mlp.onnx")
    spec = {
        "size": [32, 32],
        "layout": "NCHW",
        "color": "RGB",
        "scale": 1,
        "mean": [0] * 3,
        "std": [1] * 3,
    }
    card = read_card(write_card(tmp_path / "mlp.json", labels=["a", "b", "c"], input=spec))
    model = load_model(card)
    assert not model.cam
    assert model.cam_reason == (
        "the Gemm producing the scores reads a Relu node, not a global average pool of a feature map"
    )
    # It still classifies; CAMs are refused with the reason.
    assert len(model.classify([byo_photo()], top_k=3).results[0].top) == 3
    with pytest.raises(CamUnsupported, match="model 'mlp' has no class activation maps: the Gemm"):
        model.classify([byo_photo()], top_k=1, cam_class_ids=[0])


def flatten_head_classifier() -> onnx.ModelProto:
    """The BYO network with Flatten -> Gemm over every position instead of the global
    pool: it only runs at 64x64, and its scores are no pooled linear map."""
    model = byo_classifier()
    graph = model.graph
    nodes = [n for n in graph.node if n.op_type != "GlobalAveragePool"]
    flatten = next(n for n in nodes if n.op_type == "Flatten")
    flatten.input[0] = "features"
    del graph.node[:]
    graph.node.extend(nodes)
    weights = next(i for i in graph.initializer if i.name == "cls_w")
    weights.CopyFrom(numpy_helper.from_array(np.ones((5, 4 * 16 * 16), np.float32), "cls_w"))
    return model


def test_a_flatten_head_has_no_cam(tmp_path):
    save(flatten_head_classifier(), tmp_path / "flat.onnx")
    model = load_model(read_card(write_card(tmp_path / "flat.json")))
    assert not model.cam
    assert model.cam_reason == (
        "the Gemm producing the scores reads a MaxPool node, not a global average pool of a "
        "feature map"
    )


def rank2_input_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["scores"], transB=1)],
        "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 5])],
        initializer=[numpy_helper.from_array(np.ones((5, 12), np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def map_output_model() -> onnx.ModelProto:
    """[N, 5, 64, 64] out: a segmentation-shaped output, not class scores."""
    model = byo_classifier()
    graph = model.graph
    del graph.node[2:]
    graph.node.append(helper.make_node("Conv", ["det", "seg_w"], ["scores"]))
    graph.initializer.append(numpy_helper.from_array(np.ones((5, 4, 1, 1), np.float32), "seg_w"))
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 5, 64, 64])
    )
    return model


BAD_MODELS = [
    ("missing", None, {}, "byo-missing.onnx does not exist"),
    ("corrupt", b"\x08\x07not an onnx file at all" * 50, {}, "is not a valid ONNX file"),
    (
        "labels",
        byo_classifier(labels=4),
        {},
        "the card has 5 labels but the model outputs 4 classes",
    ),
    (
        "rank2",
        rank2_input_model(),
        {},
        "has rank 2 (['N', 12]); an image classifier's input has rank 4",
    ),
    ("outputmap", map_output_model(), {}, "an image classifier's scores are [N, classes]"),
    (
        "layout",
        byo_classifier(),
        {"input_fields": {"layout": "NCHW"}},
        "with layout NCHW that is 64 channels; an image classifier takes 1 or 3",
    ),
    (
        "size",
        byo_classifier(),
        {"input_fields": {"size": [32, 32]}},
        "the card feeds 32x32 (w x h) but the graph's input is fixed at 64x64",
    ),
    (
        "fixedsize",
        flatten_head_classifier(),
        {"input_fields": {"size": None, "short_side": 64}},
        "the model does not run on the card's input",
    ),
    ("toolarge", byo_classifier(padding_bytes=3 << 20), {}, "is 3146"),
]


@pytest.mark.parametrize(("name", "content", "fields", "message"), BAD_MODELS)
def test_models_that_cannot_be_served_are_refused_with_the_reason(
    tmp_path, name, content, fields, message
):
    onnx_path = tmp_path / f"byo-{name}.onnx"
    if isinstance(content, bytes):
        onnx_path.write_bytes(content)
    elif content is not None:
        save(content, onnx_path)
    card = read_card(write_card(tmp_path / f"byo-{name}.json", **fields))
    with pytest.raises(ModelFormatError) as err:
        load_model(card, ModelSettings(max_model_bytes=2 << 20))
    assert message in str(err.value)


def test_the_registry_serves_the_good_and_lists_the_bad_with_reasons(tmp_path, byo_card, caplog):
    save(byo_classifier(labels=4), tmp_path / "short.onnx")
    cards = [
        byo_card.path,
        write_card(tmp_path / "short.json"),
        write_card(tmp_path / "dup.json", name="byo"),
        write_card(tmp_path / "badmean.json", input_fields={"mean": [1, 2]}),
        tmp_path / "nowhere.json",
    ]
    caplog.set_level("INFO", logger="classifier")
    registry = ModelRegistry.load(cards, ModelSettings(), lambda c, s: load_model(c, s), "absent")
    assert list(registry.models) == ["byo"]
    assert registry.default_name == "byo"  # the configured default did not load
    reasons = {name: entry.reason for name, entry in registry.unavailable.items()}
    assert reasons == {
        "short": "the card has 5 labels but the model outputs 4 classes",
        "byo~2": f"the name 'byo' is already taken by {byo_card.path}",
        "badmean": "input.mean must be 3 numbers, one per channel (got 2 numbers)",
        "nowhere": reasons["nowhere"],
    }
    assert reasons["nowhere"].startswith("cannot read the card")
    logged = {(r.card, r.reason) for r in caplog.records if r.msg == "model unavailable"}
    assert (str(tmp_path / "short.json"), reasons["short"]) in logged
    assert len(logged) == 4
    assert registry.get("").name == "byo"
    with pytest.raises(
        NotFound, match=r"unknown model 'nope'; the models are: byo \(unavailable: "
    ):
        registry.get("nope")
    with pytest.raises(ModelUnavailable, match="model 'short' is unavailable: the card has 5"):
        registry.get("short")


def test_a_loader_that_fails_unexpectedly_takes_only_its_model_down(byo_card, tmp_path):
    save(mlp_head_classifier(), tmp_path / "other.onnx")

    def loader(card, settings):
        if card.name == "byo":
            raise KeyError("a bug")
        return load_model(card, settings)

    spec = {
        "size": [32, 32],
        "layout": "NCHW",
        "color": "RGB",
        "scale": 1,
        "mean": [0] * 3,
        "std": [1] * 3,
    }
    other = write_card(tmp_path / "other.json", labels=["a", "b", "c"], input=spec)
    registry = ModelRegistry.load([byo_card.path, other], ModelSettings(), loader)
    assert list(registry.models) == ["other"]
    assert registry.unavailable["byo"].reason == "KeyError: 'a bug'"


def test_labels_listed_in_the_card_name_the_classes(byo_card):
    model = load_model(byo_card)
    assert model.labels == BYO_LABELS
