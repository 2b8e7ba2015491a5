"""The classifier over gRPC: the real server on a free loopback port."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from common.images import encode_png, raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, image_pb2
from tests.conftest import GALLERY_TOP1, classifier_process
from tests.support.processes import free_port, grpc_health_status
from tests.support.served_models import BUILTIN_CARDS


@pytest.fixture(scope="module")
def stub(classifier_service):
    channel = grpc.insecure_channel(classifier_service.address)
    yield classifier_pb2_grpc.ClassifierStub(channel)
    channel.close()


def encoded(data: bytes) -> image_pb2.Image:
    return image_pb2.Image(encoded=data)


def classify(stub, images, **kwargs) -> classifier_pb2.ClassifyResponse:
    return stub.Classify(classifier_pb2.ClassifyRequest(images=images, **kwargs), timeout=30)


def test_gallery_top1_in_one_batch_and_singly(stub, photo_bytes):
    names = list(GALLERY_TOP1)
    batch = classify(stub, [encoded(photo_bytes(n)) for n in names], top_k=5)
    assert batch.model == "squeezenet1.1"
    assert batch.served_by
    for name, result in zip(names, batch.results, strict=True):
        assert result.top[0].label == GALLERY_TOP1[name], name
        single = classify(stub, [encoded(photo_bytes(name))], top_k=5).results[0]
        assert [t.class_id for t in single.top] == [t.class_id for t in result.top]
        for a, b in zip(single.top, result.top, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-5)


def test_probabilities_sum_to_one_and_pinned_have_ranks(stub, photo_bytes):
    result = classify(
        stub,
        [encoded(photo_bytes("soccer"))],
        top_k=3,
        pinned_class_ids=[1, 805],
        all_probabilities=True,
    ).results[0]
    assert len(result.probabilities) == 1000
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert [p.class_id for p in result.pinned] == [1, 805]
    assert result.pinned[1].rank == 1 and result.pinned[1].label == "soccer ball"
    assert result.pinned[0].rank > 3


def test_raw_rgb_and_encoded_bytes_give_the_same_answer(stub, photo_rgb):
    rgb = photo_rgb("lighthouse")
    from_raw = classify(stub, [raw_image(rgb)], top_k=3).results[0]
    from_png = classify(stub, [encoded(encode_png(rgb))], top_k=3).results[0]
    assert [t.class_id for t in from_raw.top] == [t.class_id for t in from_png.top]
    assert from_raw.top[0].probability == pytest.approx(from_png.top[0].probability, abs=1e-6)


def test_cams_have_the_image_size_and_peak_at_255(stub, photo_bytes):
    result = classify(
        stub, [encoded(photo_bytes("soccer"))], top_k=2, cam_class_ids=[805], cam_top_k=True
    ).results[0]
    assert [c.class_id for c in result.cams] == [805, result.top[1].class_id]
    for cam in result.cams:
        assert (cam.width, cam.height) == (227, 227)
        data = np.frombuffer(cam.data, np.uint8)
        assert data.size == 227 * 227 and data.max() == 255
        assert cam.raw_max > cam.raw_min


BAD_REQUESTS = [
    ({"images": [image_pb2.Image(encoded=b"not an image at all")]}, "could not be decoded"),
    ({"images": [image_pb2.Image()]}, "image 0 is empty"),
    (
        {"images": [image_pb2.Image(raw=image_pb2.RawImage(width=0, height=5, rgb=b""))]},
        "zero size",
    ),
    (
        {"images": [image_pb2.Image(raw=image_pb2.RawImage(width=100000, height=2, rgb=b""))]},
        "longest side",
    ),
    (
        {"images": [image_pb2.Image(raw=image_pb2.RawImage(width=4, height=4, rgb=b"\0" * 47))]},
        "47 bytes of RGB do not match 4x4x3 = 48",
    ),
    ({"images": []}, "no images"),
    ({"top_k": 1001}, "top_k=1001 is out of range 1..1000"),
    ({"pinned_class_ids": [1000]}, "pinned class id 1000 is out of range 0..999"),
    ({"cam_class_ids": [5000]}, "CAM class id 5000 is out of range"),
    ("mixed", "all images of a batch must have one size"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_REQUESTS)
def test_bad_input_is_invalid_argument_and_the_server_goes_on(
    stub, photo_bytes, photo_rgb, fields, message
):
    good = encoded(photo_bytes("soccer"))
    if fields == "mixed":
        fields = {"images": [good, raw_image(photo_rgb("soccer")[:50, :60])]}
    request = {"images": [good], **fields}
    with pytest.raises(grpc.RpcError) as err:
        classify(stub, **request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    assert classify(stub, [good], top_k=1).results[0].top[0].label == "soccer ball"


def test_model_info(stub):
    info = stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(), timeout=10)
    assert info.name == "squeezenet1.1"
    assert info.num_classes == 1000 and len(info.labels) == 1000
    assert info.labels[805] == "soccer ball"
    assert info.cam and info.input_short_side == 256


class _HeldModelServer:
    """Serves the model file only once `release` is set: a slow download."""

    def __init__(self, data: bytes) -> None:
        self.release = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                held.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/squeezenet1.1-7.onnx"


def test_health_is_serving_only_once_the_model_is_loaded(model_path, tmp_path):
    """SqueezeNet's ONNX file is missing: the service fetches it (here from a slow
    mirror) before it says SERVING, and the file lands where the card says."""
    data = model_path.read_bytes()
    mirror = _HeldModelServer(data)
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    card = json.loads((BUILTIN_CARDS / "squeezenet1.1.json").read_text())
    card["labels"] = str(BUILTIN_CARDS / card["labels"])
    (models_dir / "squeezenet1.1.json").write_text(json.dumps(card))
    proc = classifier_process(
        model_path,
        IC_MODELS_DIR=str(models_dir),
        IC_MODEL_PATH="",
        IC_MODEL_SOURCE_DIR=str(tmp_path / "nothing-local"),
        IC_MODEL_URL=mirror.url,
        IC_MODEL_SHA256=hashlib.sha256(data).hexdigest(),
    )
    proc.health_service = ""  # ready when the process answers at all
    with proc:
        assert grpc_health_status(proc.address, "") == health_pb2.HealthCheckResponse.SERVING
        assert (
            grpc_health_status(proc.address, "ic.v1.Classifier")
            == health_pb2.HealthCheckResponse.NOT_SERVING
        )
        with grpc.insecure_channel(proc.address) as channel:
            stub = classifier_pb2_grpc.ClassifierStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(), timeout=0.5)
            assert err.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
        mirror.release.set()
        proc.health_service = "ic.v1.Classifier"
        proc.wait_ready()
        assert (models_dir / "squeezenet1.1.onnx").read_bytes() == data
    mirror.server.shutdown()


def test_overload_is_resource_exhausted_logs_carry_request_ids_and_sigterm_is_graceful(
    model_path, photo_bytes
):
    metrics_port = free_port()
    proc = classifier_process(
        model_path, IC_MAX_CONCURRENT_RPCS="1", IC_METRICS_PORT=str(metrics_port)
    )
    with proc:
        images = [encoded(photo_bytes("beach"))] * 16
        with grpc.insecure_channel(proc.address) as channel:
            stub = classifier_pb2_grpc.ClassifierStub(channel)

            def call(i):
                try:
                    stub.Classify(
                        classifier_pb2.ClassifyRequest(images=images),
                        timeout=60,
                        metadata=[("x-request-id", f"req-{i}")],
                    )
                    return grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    return exc.code()

            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(call, range(8)))
        assert grpc.StatusCode.OK in codes
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert 'ic_grpc_requests_total{code="OK",method="Classify",service="classifier"}' in metrics
        assert "ic_grpc_request_duration_seconds_bucket" in metrics
        returncode = proc.stop()
    assert returncode == 0
    lines = [
        json.loads(line) for line in proc.log_path.read_text().splitlines() if line.startswith("{")
    ]
    rpc_lines = [line for line in lines if line.get("msg") == "rpc" and line.get("code") == "OK"]
    assert {line["request_id"] for line in rpc_lines} & {f"req-{i}" for i in range(8)}
    assert any(line.get("msg") == "shutting down" for line in lines)
