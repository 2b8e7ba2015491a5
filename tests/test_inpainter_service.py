"""The OpenCV Inpainter service as a process: what GetInfo says, operator
settings from the environment, health during warm-up, cancellation and a
graceful SIGTERM. The contract itself is in test_inpainter_contract.py."""

from __future__ import annotations

import json
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from common.images import raw_image
from ic.v1 import inpainter_pb2
from services.inpainter.engines import TeleaEngine
from services.runtime.grpc_server import ServerConfig
from services.runtime.inpaint_engine import EngineRegistry
from services.runtime.inpainter_servicer import inpainter_grpc_service
from tests.support.inpainting import (
    TIMEOUT,
    engines_info,
    expect_status,
    inpaint,
    inpaint_many,
    rect_mask,
    stub_for,
)
from tests.support.processes import ServiceProcess, free_port, grpc_health_status

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_get_info_lists_the_opencv_engines(inpainter_service):
    info = stub_for(inpainter_service.address).GetInfo(
        inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT
    )
    assert info.service == "inpainter"
    assert info.default_engine == "telea"
    assert [engine.name for engine in info.engines] == ["telea", "navier-stokes", "blur", "mean"]
    assert all(engine.available and engine.description for engine in info.engines)
    radius = {p.name: p for p in info.engines[0].params}["radius"]
    assert (radius.default_value, radius.min_value, radius.max_value) == (3, 1, 50)
    assert info.served_by and info.max_masks == 1024
    assert (info.max_side, info.max_pixels) == (4096, 4096 * 4096)


def test_operator_settings_from_the_environment():
    env = {
        "IC_DEFAULT_ENGINE": "navier-stokes",
        "IC_DISABLE_ENGINES": "blur",
        "IC_MAX_MASKS": "3",
        "IC_MAX_SIDE": "100",
    }
    with ServiceProcess("services.inpainter", env=env, health_service="ic.v1.Inpainter") as proc:
        stub = stub_for(proc.address)
        info = stub.GetInfo(inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT)
        assert (info.default_engine, info.max_masks, info.max_side) == ("navier-stokes", 3, 100)
        blur = engines_info(stub)["blur"]
        assert not blur.available and "IC_DISABLE_ENGINES" in blur.unavailable_reason
        image = np.full((30, 40, 3), 120, dtype=np.uint8)
        mask = np.zeros((30, 40), dtype=bool)
        mask[5:10, 5:10] = True
        expect_status(
            lambda: inpaint(stub, image, mask, engine="blur"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "engine 'blur' cannot run here",
        )
        _, response = inpaint(stub, image, mask)
        assert response.engine == "navier-stokes"
        expect_status(
            lambda: inpaint_many(stub, image, [mask] * 4),
            grpc.StatusCode.INVALID_ARGUMENT,
            "4 masks",
        )
        expect_status(
            lambda: inpaint(stub, np.zeros((101, 10, 3), dtype=np.uint8), mask),
            grpc.StatusCode.INVALID_ARGUMENT,
            "longest side allowed is 100",
        )


def test_a_misconfigured_default_engine_stops_the_service_with_a_message():
    proc = ServiceProcess("services.inpainter", env={"IC_DEFAULT_ENGINE": "lama"})
    with pytest.raises(RuntimeError, match="default engine 'lama' is not one of"):
        proc.start()


def test_sigterm_exits_cleanly(photo_rgb):
    proc = ServiceProcess("services.inpainter", health_service="ic.v1.Inpainter").start()
    image = photo_rgb("beach")
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[10:30, 10:30] = True
    inpaint(stub_for(proc.address), image, mask)
    assert proc.stop() == 0
    assert '"msg": "stopped"' in proc.log_path.read_text()


def test_cancelling_inpaint_many_stops_the_work_and_the_service_goes_on(inpainter_service):
    stub = stub_for(inpainter_service.address)
    image = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    request = inpainter_pb2.InpaintManyRequest(
        image=raw_image(image),
        masks=[rect_mask(i % 250, (i * 7) % 250, 50, 50) for i in range(1000)],
        engine="navier-stokes",
        params={"radius": 20},
    )
    stream = stub.InpaintMany(request, timeout=TIMEOUT)
    first = next(stream)
    assert 0 <= first.index < 1000
    stream.cancel()
    deadline = time.monotonic() + 20
    log = ""
    while "InpaintMany ended early" not in log and time.monotonic() < deadline:
        time.sleep(0.1)
        log = inpainter_service.log_path.read_text()
    ended = [json.loads(line) for line in log.splitlines() if "InpaintMany ended early" in line]
    assert ended, "the server did not notice the cancellation"
    # Work stopped with the stream: only the masks in flight were started.
    assert ended[-1]["masks"] == 1000 and ended[-1]["started"] < 100
    assert stub.GetInfo(inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT).engines


class GatedEngine(TeleaEngine):
    """Telea that waits for the test before its first (warm-up) run, so the test
    can observe the service while it is still warming up."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def inpaint(self, image, mask, params, seed, stop=None):
        self.gate.wait(30)
        return super().inpaint(image, mask, params, seed, stop)


def test_health_is_not_serving_until_the_engines_are_warm():
    gate = threading.Event()
    registry = EngineRegistry("inpainter", [GatedEngine(gate)], "telea")
    config = ServerConfig.from_env(0, 0)
    config.host, config.port, config.metrics_port = "127.0.0.1", free_port(), 0
    service = inpainter_grpc_service(registry, config)
    starting = threading.Thread(target=service.start)
    starting.start()
    try:
        address = f"127.0.0.1:{service.port}"
        deadline = time.monotonic() + 10
        while grpc_health_status(address) != SERVING and time.monotonic() < deadline:
            time.sleep(0.05)
        assert grpc_health_status(address) == SERVING  # the process is up...
        assert grpc_health_status(address, "ic.v1.Inpainter") == NOT_SERVING  # ...not warm
        gate.set()
        starting.join(10)
        assert grpc_health_status(address, "ic.v1.Inpainter") == SERVING
    finally:
        gate.set()
        starting.join(10)
        service.stop()
