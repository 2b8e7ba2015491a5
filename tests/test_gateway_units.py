"""The gateway's pure parts: PNG writer, rate-limit buckets, gallery listing,
configuration, gRPC status mapping. (Everything with a network is tested
against the real processes in the other test_gateway_* files.)"""

from __future__ import annotations

import io
import json
import os
import sys
import threading

import grpc
import numpy as np
import pytest
from PIL import Image

from common.channels import grpc_target
from gateway.clients import SIDE_WORK_NICENESS, Clients
from gateway.config import GatewayConfig
from gateway.errors import from_rpc_error
from gateway.gallery import list_gallery, title_from_name
from gateway.png import encode_png_fast, png_level
from gateway.ratelimit import TokenBuckets


@pytest.mark.parametrize("shape", [(227, 227, 3), (13, 7), (1, 1, 3), (300, 451), (9, 5, 2)])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_png_writer_round_trips(shape, level):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_png_fast(array, level)))
    assert decoded.format == "PNG"
    modes = {2: "L", 3: {2: "LA", 3: "RGB"}.get(shape[-1])}
    assert decoded.mode == modes[len(shape)]
    assert np.array_equal(np.asarray(decoded), array)


def test_png_auto_stores_working_copies_and_compresses_large_pictures(photo_rgb):
    assert png_level("auto", 512 * 512) == 0 and png_level("auto", 227 * 227) == 0
    assert png_level("auto", 512 * 512 + 1) == 1 and png_level("4", 10) == 4
    # A photo enlarged to 1600x1600: compressed at least twice as small as stored.
    big = np.asarray(Image.fromarray(photo_rgb("soccer")).resize((1600, 1600)))
    stored = encode_png_fast(big, png_level("auto", 227 * 227))
    compressed = encode_png_fast(big, png_level("auto", big.shape[0] * big.shape[1]))
    assert len(compressed) * 2 < len(stored)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(compressed))), big)


def test_png_writer_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="8-bit"):
        encode_png_fast(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="channels"):
        encode_png_fast(np.zeros((4, 4, 4), np.uint8))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_refills_at_the_rate():
    clock = FakeClock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)  # one token per second
    assert buckets.take("b") == 0.0  # clients are independent
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # never more than the burst


def test_titles_from_file_names():
    assert title_from_name("hockey2") == "Hockey 2"
    assert title_from_name("golden_gate-bridge") == "Golden Gate Bridge"


def test_gallery_lists_image_files_and_survives_a_damaged_index(tmp_path):
    assert list_gallery(tmp_path / "missing") == []
    for name in ("b_photo.png", "a.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "index.json").write_text("{ damaged")
    assert [(p.id, p.title, p.file) for p in list_gallery(tmp_path)] == [
        ("a", "A", "a.jpg"),
        ("b_photo", "B Photo", "b_photo.png"),
    ]
    index = {"credit": "c", "images": [{"id": "x", "title": "Ex", "file": "b_photo.png"}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    listed = list_gallery(tmp_path)
    assert [(p.id, p.title, p.credit) for p in listed] == [("x", "Ex", "c"), ("a", "A", "")]


def test_addresses_become_dns_targets():
    assert grpc_target("classifier:50051") == "dns:///classifier:50051"
    assert grpc_target("dns:///a:1") == "dns:///a:1"
    assert grpc_target(" ipv4:127.0.0.1:5 ") == "ipv4:127.0.0.1:5"


def test_configuration_from_the_environment(monkeypatch):
    monkeypatch.setenv("IC_INPAINT_BACKENDS", "a:1, dns:///b:2,")
    monkeypatch.setenv("IC_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("IC_RATE_LIMIT_PER_MIN", "30")
    config = GatewayConfig.from_env()
    assert config.inpaint_addresses == ["dns:///a:1", "dns:///b:2"]
    assert config.max_upload_bytes == 1234 and config.rate_limit_per_min == 30
    assert config.classifier_address == "dns:///localhost:50051"
    assert config.with_overrides({"max_side": 10}).image_limits.max_side == 10
    with pytest.raises(ValueError, match="unknown gateway config keys"):
        config.with_overrides({"max_sides": 10})
    monkeypatch.setenv("IC_HTTP_PORT", "eighty")
    with pytest.raises(SystemExit, match="IC_HTTP_PORT"):
        GatewayConfig.from_env()


class StatusOnly(grpc.RpcError):
    """A failed call's status: RESOURCE_EXHAUSTED and friends are hard to cause
    on demand, the mapping is what is under test."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_argument"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "resource_exhausted"),
        (grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
        (grpc.StatusCode.FAILED_PRECONDITION, 503, "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "deadline_exceeded"),
        (grpc.StatusCode.INTERNAL, 502, "bad_gateway"),
    ],
)
def test_grpc_status_mapping(code, status, name):
    error = from_rpc_error(StatusOnly(code, "details here"), "classifier")
    assert (error.status, error.code) == (status, name)
    assert error.message


def test_a_service_limit_is_413_not_400():
    error = from_rpc_error(
        StatusOnly(
            grpc.StatusCode.INVALID_ARGUMENT,
            "image is 5000x10; the longest side allowed is 4096 px",
        ),
        "classifier",
    )
    assert error.status == 413


def test_rate_limit_per_client_behind_a_trusted_proxy():
    from gateway.app import create_app

    app = create_app({"rate_limit_per_min": 1, "proxy_hops": 1})
    client = app.test_client()

    def post(forwarded_for: str) -> int:
        # An unknown route: the limit applies before routing, and nothing is called.
        return client.post(
            "/api/v1/nothing", headers={"X-Forwarded-For": forwarded_for}
        ).status_code

    assert [post("10.0.0.1"), post("10.0.0.1"), post("10.0.0.2")] == [404, 429, 404]
    limited = client.post("/api/v1/nothing", headers={"X-Forwarded-For": "10.0.0.2"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert limited.get_json()["error"]["code"] == "rate_limited"


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)
def test_side_work_runs_below_every_other_thread():
    clients = Clients(GatewayConfig())
    try:
        side = clients.side_work.submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        ).result()
    finally:
        clients.close()
    assert side == SIDE_WORK_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < SIDE_WORK_NICENESS
