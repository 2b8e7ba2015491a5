"""The classifier serving several model cards over gRPC: the built-in two, each
one's answers, and a service given bad cards that serves the good ones."""

from __future__ import annotations

import json

import grpc
import numpy as np
import onnx
import pytest

from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, image_pb2
from tests.conftest import GALLERY_TOP1, classifier_process
from tests.support.served_models import (
    BUILTIN_CARDS,
    byo_classifier,
    byo_photo,
    mlp_head_classifier,
    write_card,
)

BREAKWATER = "breakwater, groin, groyne, mole, bulwark, seawall, jetty"
# EfficientNet-Lite0 agrees with SqueezeNet's top-1 on eight photos; on the
# lighthouse it sees the breakwater first and the beacon second.
EFFNET_TOP1 = {**GALLERY_TOP1, "lighthouse": BREAKWATER}


@pytest.fixture(scope="module")
def stub(classifier_service):
    channel = grpc.insecure_channel(classifier_service.address)
    yield classifier_pb2_grpc.ClassifierStub(channel)
    channel.close()


def encoded(data: bytes) -> image_pb2.Image:
    return image_pb2.Image(encoded=data)


def test_the_builtin_models_are_listed_from_their_cards(stub):
    listing = stub.ListModels(classifier_pb2.ListModelsRequest(), timeout=10)
    models = {m.name: m for m in listing.models}
    assert listing.default_model == "squeezenet1.1"
    assert set(models) == {"squeezenet1.1", "efficientnet-lite0"}
    squeezenet, effnet = models["squeezenet1.1"], models["efficientnet-lite0"]
    assert squeezenet.default and not effnet.default
    for model in (squeezenet, effnet):
        assert model.available and model.cam and not model.cam_reason
        assert model.num_classes == 1000 and not model.labels  # labels: GetModelInfo
        assert model.licence == "Apache-2.0" and model.outputs == "logits"
    assert squeezenet.input.short_side == 256 and squeezenet.input.crop_height == 0
    assert effnet.input.short_side == 256
    assert (effnet.input.crop_height, effnet.input.crop_width) == (224, 224)
    assert list(effnet.input.mean) == [127, 127, 127] and effnet.title.startswith("EfficientNet")
    info = stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(model="efficientnet-lite0"))
    assert info.labels[805] == "soccer ball" and (info.train_height, info.train_width) == (224, 224)


def test_efficientnet_gallery_top1s_through_the_service(stub, photo_bytes):
    names = list(EFFNET_TOP1)
    reply = stub.Classify(
        classifier_pb2.ClassifyRequest(
            images=[encoded(photo_bytes(n)) for n in names], top_k=2, model="efficientnet-lite0"
        ),
        timeout=60,
    )
    assert reply.model == "efficientnet-lite0"
    for name, result in zip(names, reply.results, strict=True):
        assert result.top[0].label == EFFNET_TOP1[name], name
    lighthouse = reply.results[names.index("lighthouse")]
    assert lighthouse.top[1].label == GALLERY_TOP1["lighthouse"]


def test_an_unknown_model_is_not_found_naming_the_models(stub, photo_bytes):
    with pytest.raises(grpc.RpcError) as err:
        stub.Classify(
            classifier_pb2.ClassifyRequest(images=[encoded(photo_bytes("soccer"))], model="vgg"),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == (
        "unknown model 'vgg'; the models are: squeezenet1.1, efficientnet-lite0"
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(model="vgg"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_cams_travel_capped_with_the_image_size_and_what_was_seen(stub, photo_rgb):
    wide = np.concatenate([photo_rgb("soccer")] * 4, axis=1)  # 908 x 227
    for model, seen in (("squeezenet1.1", False), ("efficientnet-lite0", True)):
        cam = (
            stub.Classify(
                classifier_pb2.ClassifyRequest(
                    images=[raw_image(wide)], cam_class_ids=[805], cam_max_side=512, model=model
                ),
                timeout=30,
            )
            .results[0]
            .cams[0]
        )
        assert (cam.width, cam.height) == (512, 128)
        assert (cam.image_width, cam.image_height) == (908, 227)
        assert len(cam.data) == 512 * 128
        assert cam.HasField("seen") == seen
    # EfficientNet-Lite0 sees the middle 224/256 of the shorter side: 128 x 112 here.
    assert (cam.seen.width, cam.seen.height) == (112, 112)


def test_classify_edits_asks_the_named_model(stub, photo_rgb):
    soccer = photo_rgb("soccer")
    grey = np.full((100, 140, 3), 128, np.uint8)  # over both balls
    reply = stub.ClassifyEdits(
        classifier_pb2.ClassifyEditsRequest(
            model="efficientnet-lite0",
            base=raw_image(soccer),
            edits=[
                classifier_pb2.ImageEdit(
                    rect=image_pb2.MaskRect(x=20, y=60, width=140, height=100), rgb=grey.tobytes()
                )
            ],
            pinned_class_ids=[805],
            include_base=True,
        ),
        timeout=30,
    )
    assert reply.model == "efficientnet-lite0" and not reply.incremental
    edited = soccer.copy()
    edited[60:160, 20:160] = 128
    whole = stub.Classify(
        classifier_pb2.ClassifyRequest(
            images=[raw_image(edited)], pinned_class_ids=[805], model="efficientnet-lite0"
        ),
        timeout=30,
    ).results[0]
    assert reply.results[0].pinned[0].probability == pytest.approx(
        whole.pinned[0].probability, abs=1e-6
    )
    # The balls greyed out: "soccer ball" loses most of its probability.
    assert reply.results[0].pinned[0].probability < 0.5 * reply.base.pinned[0].probability


# -- a service given bad cards ---------------------------------------------------------


def bad_cards(directory) -> dict[str, tuple[str, str]]:
    """Every kind of bad card or model, and two good ones -> {name: (card path, reason part)}."""
    onnx.save(byo_classifier(), str(directory / "byo.onnx"))
    write_card(directory / "byo.json")
    onnx.save(mlp_head_classifier(), str(directory / "mlp.onnx"))
    mlp_input = {
        "size": [32, 32],
        "layout": "NCHW",
        "color": "RGB",
        "scale": 1,
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    }
    write_card(directory / "mlp.json", labels=["a", "b", "c"], input=mlp_input)
    (directory / "corrupt.onnx").write_bytes(b"this is not protobuf" * 100)
    onnx.save(byo_classifier(labels=4), str(directory / "fourlabels.onnx"))
    onnx.save(byo_classifier(padding_bytes=8 << 20), str(directory / "huge.onnx"))
    flat = byo_classifier()
    flat.graph.input[0].type.tensor_type.shape.dim.pop()  # rank 3: not an image input
    onnx.save(flat, str(directory / "rank3.onnx"))
    cases = {
        "missing": ({}, "missing.onnx is missing and the card has no url"),
        "corrupt": ({}, "is not a valid ONNX file"),
        "fourlabels": ({}, "the card has 5 labels but the model outputs 4 classes"),
        "rank3": ({}, "has rank 3"),
        "badmean": ({"input_fields": {"mean": [0.5, 0.5]}}, "input.mean must be 3 numbers"),
        "badlayout": ({"input_fields": {"layout": "HWC"}}, "input.layout must be NCHW or NHWC"),
        "huge": ({}, "the limit is 6291456 (IC_MAX_MODEL_BYTES)"),
    }
    out = {}
    for name, (fields, reason) in cases.items():
        path = write_card(directory / f"{name}.json", onnx=f"{name}.onnx", **fields)
        out[name] = (str(path), reason)
    return out


def test_bad_cards_are_listed_unavailable_with_reasons_and_the_rest_serve(model_path, tmp_path):
    expected = bad_cards(tmp_path)
    extra = [str(tmp_path / "byo.json"), str(tmp_path / "mlp.json")] + [
        p for p, _ in expected.values()
    ]
    only_squeezenet = tmp_path / "builtin"
    only_squeezenet.mkdir()
    card = json.loads((BUILTIN_CARDS / "squeezenet1.1.json").read_text())
    card.update(onnx=str(model_path), labels=str(BUILTIN_CARDS / card["labels"]))
    (only_squeezenet / "squeezenet1.1.json").write_text(json.dumps(card))
    proc = classifier_process(
        model_path,
        IC_MODELS_DIR=str(only_squeezenet),
        IC_EXTRA_MODELS=",".join(extra),
        IC_MAX_MODEL_BYTES=str(6 << 20),
    )
    with proc, grpc.insecure_channel(proc.address) as channel:
        stub = classifier_pb2_grpc.ClassifierStub(channel)
        listing = stub.ListModels(classifier_pb2.ListModelsRequest(), timeout=10)
        models = {m.name: m for m in listing.models}
        assert {n for n, m in models.items() if m.available} == {"squeezenet1.1", "byo", "mlp"}
        for name, (_, reason) in expected.items():
            assert not models[name].available, name
            assert reason in models[name].unavailable_reason, name
        assert models["mlp"].cam is False
        assert "reads a Relu node" in models["mlp"].cam_reason

        photo = raw_image(byo_photo())
        byo = stub.Classify(
            classifier_pb2.ClassifyRequest(images=[photo], model="byo", cam_class_ids=[0]),
            timeout=30,
        ).results[0]
        assert byo.top[0].label == "red square" and len(byo.top) == 5
        with pytest.raises(grpc.RpcError) as err:
            stub.Classify(classifier_pb2.ClassifyRequest(images=[photo], model="corrupt"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details().startswith("model 'corrupt' is unavailable: ")
        with pytest.raises(grpc.RpcError) as err:
            stub.Classify(
                classifier_pb2.ClassifyRequest(images=[photo], model="mlp", cam_top_k=True)
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "model 'mlp' has no class activation maps" in err.value.details()
        top = stub.Classify(classifier_pb2.ClassifyRequest(images=[photo])).results[0].top
        assert len(top) == 5  # the default model, SqueezeNet
    lines = [json.loads(x) for x in proc.log_path.read_text().splitlines() if x.startswith("{")]
    logged = {
        line["card"]: line["reason"] for line in lines if line.get("msg") == "model unavailable"
    }
    for card_path, reason in expected.values():
        assert reason in logged[card_path], card_path
