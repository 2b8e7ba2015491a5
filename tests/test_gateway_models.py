"""Models through the HTTP API: the list, a model per request, a comparison of two,
a bring-your-own model served through IC_EXTRA_MODELS end to end, a model
without CAMs, and CAM sizes for big photos."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.conftest import GALLERY_TOP1, system_with_models
from tests.gateway_fixtures import png_bytes
from tests.support.served_models import (
    BYO_LABELS,
    MLP_HEAD_INPUT,
    byo_classifier,
    byo_photo,
    mlp_head_classifier,
    write_card,
)

SOCCER_BALL = 805
RED_BOX = (120, 20, 168, 68)  # x0, y0, x1, y1 of the evidence in byo_photo()


@pytest.fixture(scope="module")
def extra_cards(tmp_path_factory):
    """A user's own cards, built here: a small NHWC/BGR classifier and one without CAMs."""
    directory = tmp_path_factory.mktemp("extra-models")
    onnx.save(byo_classifier(), str(directory / "byo.onnx"))
    onnx.save(mlp_head_classifier(), str(directory / "mlp.onnx"))
    return [
        write_card(directory / "byo.json", title="Colour squares (test)"),
        write_card(directory / "mlp.json", labels=["one", "two", "three"], input=MLP_HEAD_INPUT),
    ]


@pytest.fixture(scope="module")
def stack(model_path, extra_cards, images_dir):
    """Classifier (the built-in cards + IC_EXTRA_MODELS), inpainter, explainer and gateway."""
    with system_with_models(model_path, extra_cards, images_dir) as system:
        yield system


@pytest.fixture(scope="module")
def gateway(stack):
    return stack[0]


def decode_png(text: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    assert image.format == "PNG"
    return np.asarray(image)


def centre_of_peak(gray: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(gray >= gray.max() - 5)
    return float(xs.mean()), float(ys.mean())


def post(gateway, path: str, image: bytes, mask: bytes | None = None, **fields):
    files = {"image": ("image.png", image)}
    if mask is not None:
        files["mask"] = ("mask.png", mask)
    return gateway.post(path, files=files, data={k: str(v) for k, v in fields.items()})


def test_models_lists_every_card_the_classifier_was_given(gateway):
    body = gateway.get("/api/v1/models").json()
    models = {m["name"]: m for m in body["models"]}
    assert body["default"] == "squeezenet1.1"
    assert set(models) == {"squeezenet1.1", "efficientnet-lite0", "byo", "mlp"}
    assert all(m["available"] for m in models.values())
    assert models["squeezenet1.1"]["default"] and not models["byo"]["default"]
    assert models["byo"]["title"] == "Colour squares (test)"
    assert models["byo"]["num_classes"] == 5 and models["byo"]["cam"] is True
    assert models["byo"]["input"] == {
        "size": [64, 64],
        "crop": None,
        "layout": "NHWC",
        "color": "BGR",
        "scale": pytest.approx(1 / 255),
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    }
    assert models["efficientnet-lite0"]["input"]["crop"] == [224, 224]
    assert models["squeezenet1.1"]["input"]["short_side"] == 256
    assert models["mlp"]["cam"] is False
    assert "not a global average pool" in models["mlp"]["cam_reason"]
    info = gateway.get("/api/v1/info").json()
    assert info["model"]["name"] == "squeezenet1.1"
    assert [m["name"] for m in info["models"]] == [m["name"] for m in body["models"]]


def test_labels_per_model(gateway):
    assert gateway.get("/api/v1/labels?model=byo").json() == {"model": "byo", "labels": BYO_LABELS}
    default = gateway.get("/api/v1/labels").json()
    assert default["model"] == "squeezenet1.1" and len(default["labels"]) == 1000
    missing = gateway.get("/api/v1/labels?model=vgg16")
    assert missing.status_code == 404
    assert (
        "the models are: squeezenet1.1, efficientnet-lite0, byo, mlp"
        in (missing.json()["error"]["message"])
    )


def test_a_bring_your_own_model_end_to_end_with_its_cam(gateway):
    """The user's NHWC, BGR, 5-label model: classified through the gateway, its CAM
    brightest on the red square the test painted."""
    photo = png_bytes(byo_photo())
    reply = post(gateway, "/api/v1/classify", photo, model="byo", cam="0", top_k=5)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "byo"
    assert body["predictions"][0]["label"] == "red square"
    cam = body["cams"][0]
    assert (cam["width"], cam["height"]) == (200, 160) == (cam["map_width"], cam["map_height"])
    gray = decode_png(cam["png"])
    assert gray.shape == (160, 200) and gray.max() == 255
    x, y = centre_of_peak(gray)
    x0, y0, x1, y1 = RED_BOX
    assert x0 <= x < x1 and y0 <= y < y1

    # Brush over the square: the evidence is gone, and so is the class.
    mask = np.zeros((160, 200), np.uint8)
    mask[y0 - 4 : y1 + 4, x0 - 4 : x1 + 4] = 255
    edit = post(gateway, "/api/v1/edit", photo, png_bytes(mask), model="byo", classes="0")
    assert edit.status_code == 200, edit.text
    edited = edit.json()
    assert edited["model"] == "byo" and edited["predictions"][0]["label"] == "nothing"
    assert edited["pinned"][0]["probability"] < 0.3 * body["predictions"][0]["probability"]


def test_a_model_without_cams_classifies_and_refuses_cams_by_saying_why(gateway):
    photo = png_bytes(byo_photo())
    plain = post(gateway, "/api/v1/classify", photo, model="mlp", top_k=3)
    assert plain.status_code == 200 and len(plain.json()["predictions"]) == 3
    for cam in ("top", "1"):
        refused = post(gateway, "/api/v1/classify", photo, model="mlp", top_k=3, cam=cam)
        assert refused.status_code == 400
        message = refused.json()["error"]["message"]
        assert message.startswith("model 'mlp' has no class activation maps (the Gemm")
        assert message.endswith("ask with cam=none")
    # Explanations treat the model as a black box: they still work.
    explained = post(gateway, "/api/v1/explain", photo, model="mlp", window=64, stride=48)
    assert explained.status_code == 200, explained.text
    assert explained.json()["model"] == "mlp"
    # Laplace's K is the model's class count, not ImageNet's thousand.
    classes = gateway.get("/api/v1/models").json()["models"]
    assert explained.json()["laplace"]["k"] == next(
        m["num_classes"] for m in classes if m["name"] == "mlp"
    )
    faithful = post(gateway, "/api/v1/explain", photo, model="mlp", faithfulness="true")
    assert faithful.status_code == 400
    assert "model 'mlp' has" in faithful.json()["error"]["message"]


def test_compare_two_models_on_one_image(gateway, photo_bytes):
    reply = post(
        gateway,
        "/api/v1/classify",
        photo_bytes("lighthouse"),
        model="squeezenet1.1",
        compare="efficientnet-lite0",
        classes="437",
        cam="437",
        top_k=2,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "squeezenet1.1"
    assert body["predictions"][0]["label"] == GALLERY_TOP1["lighthouse"]
    compare = body["compare"]
    assert compare["model"] == "efficientnet-lite0"
    assert compare["predictions"][0]["label"].startswith("breakwater")
    assert compare["predictions"][1]["label"] == GALLERY_TOP1["lighthouse"]
    assert [p["class_id"] for p in compare["pinned"]] == [437]
    assert compare["pinned"][0]["rank"] == 2
    # SqueezeNet's map covers the whole photo; EfficientNet-Lite0's says what it saw.
    ours, theirs = body["cams"][0], compare["cams"][0]
    assert "seen" not in ours and decode_png(ours["png"]).shape == (227, 227)
    assert theirs["seen"] == {"x": 14, "y": 14, "width": 199, "height": 199}
    gray_alpha = decode_png(theirs["png"])
    assert gray_alpha.shape == (227, 227, 2)
    assert gray_alpha[14:213, 14:213, 1].min() == 255  # opaque where it looked
    assert gray_alpha[:14, :, 1].max() == 0 and gray_alpha[:, 213:, 1].max() == 0
    assert "classify_compare" in body["timing_ms"]
    assert body["served_by"]["classifier_compare"]


def test_compare_after_one_stroke_inpaints_once_and_classifies_twice(stack, photo_bytes):
    gateway, classifier, inpainter = stack
    photo = photo_bytes("soccer")
    mask = np.zeros((227, 227), np.uint8)
    mask[100:115, 40:190] = 255
    request_id = "compare-stroke-1"
    reply = gateway.post(
        "/api/v1/edit",
        files={"image": ("soccer.jpg", photo), "mask": ("mask.png", png_bytes(mask))},
        data={"compare": "efficientnet-lite0", "cam": "top", "top_k": "3", "classes": "805"},
        headers={"X-Request-ID": request_id},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["removed_pixels"] == 15 * 150
    assert body["model"] == "squeezenet1.1" and body["compare"]["model"] == "efficientnet-lite0"
    for answer in (body, body["compare"]):
        assert len(answer["predictions"]) == 3 and len(answer["cams"]) == 3
        assert [c["class_id"] for c in answer["cams"]] == [
            p["class_id"] for p in answer["predictions"]
        ]
        assert answer["pinned"][0]["class_id"] == SOCCER_BALL
    assert body["pinned"][0]["probability"] != body["compare"]["pinned"][0]["probability"]

    def rpcs(process, method: str) -> int:
        lines = [json.loads(x) for x in process.log_path.read_text().splitlines() if x[:1] == "{"]
        return sum(
            1
            for line in lines
            if line.get("msg") == "rpc"
            and line.get("method") == method
            and line.get("request_id") == request_id
        )

    assert rpcs(inpainter, "Inpaint") == 1
    assert rpcs(classifier, "ClassifyEdits") == 2  # the image and its filled hole, per model


def test_a_compare_model_without_cams_answers_without_them(gateway):
    reply = post(
        gateway,
        "/api/v1/classify",
        png_bytes(byo_photo()),
        model="byo",
        compare="mlp",
        cam="0",
        top_k=3,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["cams"]) == 1
    assert (
        body["compare"]["cams"] == []
        and "not a global average pool" in body["compare"]["cam_reason"]
    )


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        (
            {"model": "resnet50"},
            404,
            "unknown model 'resnet50'; the models are: squeezenet1.1, efficientnet-lite0, byo, mlp",
        ),
        ({"compare": "resnet50"}, 404, "unknown model 'resnet50'"),
        ({"compare": "squeezenet1.1"}, 400, "compare='squeezenet1.1' is the model itself"),
        (
            {"model": "efficientnet-lite0", "compare": "byo", "classes": "805"},
            400,
            "classes: class id 805 is not a class of the compare model 'byo' (its class ids are 0..4)",
        ),
        ({"model": "byo", "classes": "5"}, 400, "classes: unknown class id 5; class ids are 0..4"),
        ({"model": "byo", "top_k": "6"}, 400, "top_k=6 is out of range 1..5"),
        ({"cam_size": "huge"}, 400, "cam_size='huge': use capped or full"),
    ],
)
def test_bad_model_parts_are_refused_by_name(gateway, photo_bytes, fields, status, words):
    for path in ("/api/v1/classify", "/api/v1/edit"):
        mask = png_bytes(np.full((227, 227), 0, np.uint8))
        reply = post(
            gateway, path, photo_bytes("soccer"), mask if path.endswith("edit") else None, **fields
        )
        assert reply.status_code == status, (path, reply.text)
        assert words in reply.json()["error"]["message"], path


def test_cams_of_a_big_photo_travel_capped_unless_full_is_asked(gateway, photo_rgb):
    big = np.asarray(Image.fromarray(photo_rgb("soccer")).resize((1000, 600), Image.BICUBIC))
    photo = png_bytes(big)
    capped = post(gateway, "/api/v1/classify", photo, cam="805", top_k=1).json()["cams"][0]
    full = post(gateway, "/api/v1/classify", photo, cam="805", top_k=1, cam_size="full").json()
    full = full["cams"][0]
    assert (capped["width"], capped["height"]) == (1000, 600) == (full["width"], full["height"])
    assert (capped["map_width"], capped["map_height"]) == (512, 307)
    assert (full["map_width"], full["map_height"]) == (1000, 600)
    small, large = decode_png(capped["png"]), decode_png(full["png"])
    scaled = np.asarray(Image.fromarray(small).resize((1000, 600), Image.BILINEAR))
    distance = np.hypot(*np.subtract(centre_of_peak(scaled), centre_of_peak(large)))
    assert distance < 6
