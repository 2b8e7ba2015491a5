"""Incremental ClassifyEdits through the classifier service (gRPC): which
models use it and why, every answer equal to Classify of the edited image sent
whole, and the base image's activations reused from one call to the next."""

from __future__ import annotations

import re
import urllib.request

import cv2
import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, image_pb2
from services.classifier.incremental_edits import reference_windows
from tests.conftest import classifier_process
from tests.support.processes import free_port
from tests.support.served_models import BYO_LABELS, byo_classifier, write_card
from tests.support.synthetic_models import broadcast_add, with_sigmoid

TOLERANCE = 1e-4  # largest difference of any class probability
SOCCER_BALL = 805


@pytest.fixture(scope="module")
def stub(classifier_service):
    channel = grpc.insecure_channel(classifier_service.address)
    yield classifier_pb2_grpc.ClassifierStub(channel)
    channel.close()


def edit_message(x: int, y: int, pixels: np.ndarray) -> classifier_pb2.ImageEdit:
    height, width = pixels.shape[:2]
    return classifier_pb2.ImageEdit(
        rect=image_pb2.MaskRect(x=x, y=y, width=width, height=height),
        rgb=np.ascontiguousarray(pixels).tobytes(),
    )


def telea_windows(rgb: np.ndarray, rects) -> list[tuple[int, int, np.ndarray]]:
    """Each rectangle filled as the telea engine fills it (as an explanation does)."""
    edits = []
    for x, y, w, h in rects:
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[y : y + h, x : x + w] = 255
        filled = cv2.inpaint(rgb, mask, 3, cv2.INPAINT_TELEA)
        edits.append((x, y, filled[y : y + h, x : x + w].copy()))
    return edits


def classified_whole(stub, rgb, edits, model: str = "") -> np.ndarray:
    """All probabilities of each edited image sent whole to Classify (64 per call)."""
    rows = []
    for start in range(0, len(edits), 64):
        images = []
        for x, y, pixels in edits[start : start + 64]:
            edited = rgb.copy()
            edited[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
            images.append(raw_image(edited))
        reply = stub.Classify(
            classifier_pb2.ClassifyRequest(images=images, all_probabilities=True, model=model),
            timeout=120,
        )
        rows += [list(result.probabilities) for result in reply.results]
    return np.array(rows)


def classify_edits(stub, rgb, edits, model: str = "", **fields):
    return stub.ClassifyEdits(
        classifier_pb2.ClassifyEditsRequest(
            model=model,
            base=raw_image(rgb),
            edits=[edit_message(*e) for e in edits],
            all_probabilities=True,
            **fields,
        ),
        timeout=120,
    )


def test_model_info_says_which_models_compute_edits_incrementally_and_why(stub):
    models = {m.name: m for m in stub.ListModels(classifier_pb2.ListModelsRequest()).models}
    squeezenet, lite0 = models["squeezenet1.1"], models["efficientnet-lite0"]
    assert squeezenet.incremental and squeezenet.incremental_reason == ""
    assert not lite0.incremental
    # Its engine would still do about two thirds of full inference's work.
    assert re.search(
        r"^not worth it: .* would still do 6\d% of full inference's multiply-adds, "
        r"a 1\.\d\dx saving; it is used from 2x \(IC_INCREMENTAL_MIN_SAVING\)$",
        lite0.incremental_reason,
    ), lite0.incremental_reason


def test_the_default_grid_sent_in_chunks_equals_classify_and_reuses_the_base(stub, photo_rgb):
    """An explanation's calls: the base alone first, then its 169 windows (48 px,
    stride 16 on the 227 px photo) 16 at a time. Every window's probabilities
    equal Classify of the edited image; only the first call computes the base."""
    rgb = photo_rgb("bank")
    windows = reference_windows()
    assert len(windows) == 169 and windows[-1] == (179, 179, 48, 48)
    edits = telea_windows(rgb, windows)
    first = stub.ClassifyEdits(
        classifier_pb2.ClassifyEditsRequest(
            base=raw_image(rgb), include_base=True, all_probabilities=True
        ),
        timeout=60,
    )
    assert first.incremental and not first.results
    got = []
    for start in range(0, len(edits), 16):
        reply = classify_edits(stub, rgb, edits[start : start + 16])
        assert reply.incremental and len(reply.results) == len(edits[start : start + 16])
        # The base's activations come from the cache: no "base" computed.
        assert "base_cached" in reply.timing_ms and "base" not in reply.timing_ms
        got += [list(result.probabilities) for result in reply.results]
    expected = classified_whole(stub, rgb, edits)
    assert np.abs(np.array(got) - expected).max() <= TOLERANCE
    # Not vacuous: the windows do move the probabilities.
    assert np.abs(expected - expected.mean(axis=0)).max() > 0.01
    base = classified_whole(stub, rgb, [(0, 0, rgb[:1, :1])])[0]
    assert np.abs(np.array(first.base.probabilities) - base).max() <= TOLERANCE


@pytest.mark.parametrize(
    "rects",
    [
        # Corners and borders of the 227x227 photo, flush with its edges.
        [(0, 0, 48, 48), (179, 0, 48, 48), (0, 179, 48, 48), (179, 179, 48, 48)],
        [(0, 90, 227, 20), (100, 0, 15, 227), (0, 0, 227, 1), (226, 0, 1, 227)],
        # Larger than half the image, the whole image, single pixels.
        [(10, 5, 200, 150), (0, 0, 227, 227), (30, 60, 120, 167)],
        [(113, 113, 1, 1), (0, 0, 1, 1), (226, 226, 1, 1), (0, 226, 1, 1)],
    ],
    ids=["corners", "border-strips", "large", "one-pixel"],
)
def test_edits_of_any_size_and_place_equal_classify(rects, stub, photo_rgb):
    rgb = photo_rgb("soccer")
    edits = telea_windows(rgb, rects)
    # Telea has nothing to fill the whole image from, and leaves a 1-pixel hole
    # almost as it was: those get the negative of their pixels.
    edits = [
        (x, y, 255 - p if p.size == 3 or p.shape[:2] == rgb.shape[:2] else p) for x, y, p in edits
    ]
    reply = classify_edits(stub, rgb, edits, pinned_class_ids=[SOCCER_BALL], include_base=True)
    assert reply.incremental
    got = np.array([list(result.probabilities) for result in reply.results])
    expected = classified_whole(stub, rgb, edits)
    assert np.abs(got - expected).max() <= TOLERANCE
    for result, row in zip(reply.results, expected, strict=True):
        assert result.top[0].class_id == int(np.argmax(row))
        assert result.pinned[0].probability == pytest.approx(row[SOCCER_BALL], abs=TOLERANCE)
    # Every edit changes something the network sees.
    assert np.abs(got - np.array(reply.base.probabilities)).max(axis=1).min() > 1e-6


def test_an_image_of_another_aspect_runs_incrementally_too(stub, photo_rgb):
    """SqueezeNet sees the whole image at its own aspect: a 400x227 base is a
    256-high, 451-wide network input with a geometry of its own."""
    rgb = np.ascontiguousarray(np.concatenate([photo_rgb("hockey"), photo_rgb("skiing")], 1))
    rgb = np.ascontiguousarray(rgb[:, :400])
    edits = telea_windows(rgb, [(0, 0, 60, 60), (340, 167, 60, 60), (200, 100, 30, 30)])
    reply = classify_edits(stub, rgb, edits)
    assert reply.incremental
    got = np.array([list(result.probabilities) for result in reply.results])
    assert np.abs(got - classified_whole(stub, rgb, edits)).max() <= TOLERANCE


# -- a service with models the engine cannot run, and the knobs ---------------


def with_scores_output(model: onnx.ModelProto, classes: int) -> onnx.ModelProto:
    """The synthetic graph's output declared as a classifier's: [N, classes]."""
    output = model.graph.output[0]
    output.CopyFrom(helper.make_tensor_value_info(output.name, TensorProto.FLOAT, ["N", classes]))
    return model


def sigmoid_card(folder) -> str:
    """A channels-first classifier with a swish activation (x * sigmoid(x))."""
    onnx.save(with_scores_output(with_sigmoid(24), 4), str(folder / "swish.onnx"))
    return str(write_card(folder / "swish.json", labels=BYO_LABELS[:4], input=nchw_input(24)))


def broadcast_card(folder) -> str:
    """Supported operators, but a map plus its own global average (broadcast)."""
    onnx.save(with_scores_output(broadcast_add(24), 5), str(folder / "broadcast.onnx"))
    return str(write_card(folder / "broadcast.json", input=nchw_input(24)))


def nchw_input(side: int) -> dict:
    return {
        "size": [side, side],
        "layout": "NCHW",
        "color": "RGB",
        "scale": 1 / 255,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }


@pytest.fixture(scope="module")
def tuned(model_path, tmp_path_factory):
    """The classifier with three models the engine cannot run (NHWC, an
    unsupported operator, a broadcast Add), EfficientNet-Lite0 made incremental
    by IC_INCREMENTAL_MIN_SAVING=1, and a cache that holds one SqueezeNet base
    (45 MiB; 33 MiB each at 256x256)."""
    folder = tmp_path_factory.mktemp("uncommon-models")
    onnx.save(byo_classifier(), str(folder / "byo.onnx"))
    cards = [str(write_card(folder / "byo.json")), sigmoid_card(folder), broadcast_card(folder)]
    metrics_port = free_port()
    with classifier_process(
        model_path,
        IC_EXTRA_MODELS=",".join(cards),
        IC_INCREMENTAL_MIN_SAVING="1",
        IC_INCREMENTAL_CACHE_MB="45",
        IC_METRICS_PORT=str(metrics_port),
    ) as process:
        channel = grpc.insecure_channel(process.address)
        yield classifier_pb2_grpc.ClassifierStub(channel), metrics_port
        channel.close()


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("byo", "the input is NHWC: incremental inference works on channels-first (NCHW) maps"),
        ("swish", "the graph cannot run incrementally: operator Sigmoid is not supported"),
        (
            "broadcast",
            "the graph cannot run incrementally at its usual size: "
            "add8: Add broadcasts one map over another",
        ),
    ],
)
def test_models_the_engine_cannot_run_say_why_and_answer_in_full(model, reason, tuned):
    stub, _ = tuned
    info = stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(model=model), timeout=10)
    assert not info.incremental and info.incremental_reason == reason
    rgb = np.full((80, 100, 3), 110, np.uint8)
    rgb[10:50, 60:90] = (220, 30, 30)
    edits = [(60, 10, np.full((40, 30, 3), 110, np.uint8)), (0, 0, np.zeros((80, 20, 3), np.uint8))]
    reply = classify_edits(stub, rgb, edits, model=model, include_base=True)
    assert not reply.incremental and "base" not in reply.timing_ms
    got = np.array([list(result.probabilities) for result in reply.results])
    expected = classified_whole(stub, rgb, edits, model=model)
    assert np.abs(got - expected).max() <= 1e-6  # the very same computation
    assert np.abs(got - np.array(reply.base.probabilities)).max() > 1e-3


def test_a_lower_min_saving_makes_efficientnet_incremental_and_exact(tuned, photo_rgb):
    stub, _ = tuned
    info = stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(model="efficientnet-lite0"))
    assert info.incremental and info.incremental_reason == ""
    rgb = photo_rgb("lighthouse")
    # Two windows of the grid, and a strip its centre crop hides (224 of 256).
    edits = telea_windows(rgb, [(96, 32, 48, 48), (0, 179, 48, 48), (0, 0, 10, 227)])
    reply = classify_edits(stub, rgb, edits, model="efficientnet-lite0", include_base=True)
    assert reply.incremental
    got = np.array([list(result.probabilities) for result in reply.results])
    assert np.abs(got - classified_whole(stub, rgb, edits, "efficientnet-lite0")).max() <= TOLERANCE
    assert list(reply.results[2].probabilities) == list(reply.base.probabilities)


def metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_base_cache_is_bounded_by_bytes_and_counted(tuned, photo_rgb):
    """45 MiB hold one SqueezeNet base of a 227 px photo: a second photo's base
    pushes the first out, and its next call computes it again."""
    stub, port = tuned
    soccer, beach = photo_rgb("soccer"), photo_rgb("beach")
    window = [(50, 50, np.zeros((48, 48, 3), np.uint8))]

    def base_source(rgb) -> str:
        reply = classify_edits(stub, rgb, window)
        assert reply.incremental
        (key,) = {"base", "base_cached"} & set(reply.timing_ms)
        return key

    before = {
        source: metric(port, "ic_classifier_edit_bases_total", model="squeezenet1.1", source=source)
        for source in ("computed", "cache")
    }
    sources = [base_source(image) for image in (soccer, soccer, beach, beach, soccer)]
    assert sources == ["base", "base_cached", "base", "base_cached", "base"]
    after = {
        source: metric(port, "ic_classifier_edit_bases_total", model="squeezenet1.1", source=source)
        for source in ("computed", "cache")
    }
    assert after["computed"] - before["computed"] == 3 and after["cache"] - before["cache"] == 2
    assert metric(port, "ic_classifier_edits_total", model="squeezenet1.1", mode="incremental") >= 5


def test_the_cache_and_min_saving_settings_are_read_and_checked(monkeypatch):
    from services.classifier.__main__ import settings_from_env

    monkeypatch.setenv("IC_INCREMENTAL_CACHE_MB", "3")
    monkeypatch.setenv("IC_INCREMENTAL_MIN_SAVING", "1.5")
    settings = settings_from_env()
    assert settings.base_cache.max_bytes == 3 << 20 and settings.incremental_min_saving == 1.5
    for name, value in (("IC_INCREMENTAL_CACHE_MB", "-1"), ("IC_INCREMENTAL_MIN_SAVING", "-2")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit, match="must be 0 or more"):
            settings_from_env()
        monkeypatch.delenv(name)
    monkeypatch.setenv("IC_INCREMENTAL_MIN_SAVING", "lots")
    with pytest.raises(SystemExit, match="'lots' is not a number"):
        settings_from_env()
