"""The patchmatch service as a process: what GetInfo says, concurrent calls
(PatchMatch runs them in parallel, Resynthesizer one at a time) give the same
pictures as serial ones, operators can switch engines off, deadlines stop the
C engine, and SIGTERM exits cleanly. The contract is in test_inpainter_contract.py."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from common.images import raw_image, raw_mask
from ic.v1 import inpainter_pb2
from tests.support.inpainting import (
    TIMEOUT,
    engines_info,
    expect_status,
    inpaint,
    inpaint_many,
    kite_mask,
    stub_for,
)
from tests.support.processes import ServiceProcess


def test_get_info_lists_patchmatch_and_resynthesizer(patchmatch_service):
    info = stub_for(patchmatch_service.address).GetInfo(
        inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT
    )
    assert (info.service, info.default_engine) == ("patchmatch", "patchmatch")
    engines = {engine.name: engine for engine in info.engines}
    assert list(engines) == ["patchmatch", "resynthesizer"]
    assert engines["patchmatch"].available and engines["patchmatch"].randomized
    assert {p.name for p in engines["patchmatch"].params} == {
        "patch_size",
        "em_iterations",
        "pm_iterations",
        "context",
    }
    assert engines["resynthesizer"].available and not engines["resynthesizer"].randomized
    assert "GPL-3.0" in engines["resynthesizer"].description


def _cases(image: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Eight (mask, seed) pairs: different holes, different seeds."""
    cases = []
    for i in range(8):
        mask = np.zeros(image.shape[:2], dtype=bool)
        y, x = 10 + 9 * i, 15 + 11 * i
        mask[y : y + 18, x : x + 22] = True
        cases.append((mask, 100 + i))
    return cases


@pytest.mark.parametrize("engine", ["patchmatch", "resynthesizer"])
def test_concurrent_calls_give_the_same_pictures_as_serial_ones(
    patchmatch_service, photo_rgb, engine
):
    stub = stub_for(patchmatch_service.address)
    image = np.ascontiguousarray(photo_rgb("hockey")[:130, :150])
    cases = _cases(image)
    serial = [inpaint(stub, image, mask, engine=engine, seed=seed)[0] for mask, seed in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(
            pool.map(
                lambda case: inpaint(stub, image, case[0], engine=engine, seed=case[1])[0], cases
            )
        )
    for index, (one, other) in enumerate(zip(serial, parallel, strict=True)):
        assert np.array_equal(one, other), f"case {index} differs when run concurrently"
    # InpaintMany runs its masks on a thread pool too; one seed for all of them.
    many = inpaint_many(stub, image, [mask for mask, _ in cases], engine=engine, seed=7)
    for index, (mask, _) in enumerate(cases):
        single, _ = inpaint(stub, image, mask, engine=engine, seed=7)
        assert np.array_equal(many[index], single), f"mask {index} differs in InpaintMany"


def test_even_patch_size_is_refused_naming_the_parameter(patchmatch_service, photo_rgb):
    stub = stub_for(patchmatch_service.address)
    image = photo_rgb("lighthouse")
    expect_status(
        lambda: inpaint(stub, image, kite_mask(image.shape), engine="patchmatch", patch_size=8),
        grpc.StatusCode.INVALID_ARGUMENT,
        "patch_size",
        "odd",
    )


def test_a_deadline_stops_the_engine_and_the_service_goes_on(patchmatch_service):
    stub = stub_for(patchmatch_service.address)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (1500, 1500, 3), dtype=np.uint8)
    mask = np.zeros((1500, 1500), dtype=bool)
    mask[200:1300, 200:1300] = True
    request = inpainter_pb2.InpaintRequest(
        image=raw_image(image),
        mask=raw_mask(mask),
        engine="patchmatch",
        params={"em_iterations": 20, "pm_iterations": 10},
    )
    expect_status(lambda: stub.Inpaint(request, timeout=2.0), grpc.StatusCode.DEADLINE_EXCEEDED)
    small = np.ascontiguousarray(image[:40, :40])
    hole = np.zeros((40, 40), dtype=bool)
    hole[10:20, 10:20] = True
    output, _ = inpaint(stub, small, hole, engine="patchmatch")
    assert np.array_equal(output[~hole], small[~hole])
    # The engine itself gave up (its deadline is handed to the C code) rather than
    # running on to the end, which the server would have logged as OK.
    calls = [json.loads(line) for line in patchmatch_service.log_path.read_text().splitlines()]
    stopped = [c for c in calls if c.get("msg") == "rpc" and c.get("code") == "DEADLINE_EXCEEDED"]
    assert stopped and stopped[-1]["method"] == "Inpaint"


def test_operators_can_disable_resynthesizer_and_sigterm_exits_cleanly(photo_rgb):
    proc = ServiceProcess(
        "services.patchmatch",
        env={"IC_DISABLE_ENGINES": "resynthesizer"},
        health_service="ic.v1.Inpainter",
    ).start()
    try:
        stub = stub_for(proc.address)
        resynthesizer = engines_info(stub)["resynthesizer"]
        assert not resynthesizer.available
        assert "IC_DISABLE_ENGINES" in resynthesizer.unavailable_reason
        image = photo_rgb("lighthouse")
        mask = kite_mask(image.shape)
        expect_status(
            lambda: inpaint(stub, image, mask, engine="resynthesizer"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "engine 'resynthesizer' cannot run here",
            "IC_DISABLE_ENGINES",
        )
        output, response = inpaint(stub, image, mask)
        assert response.engine == "patchmatch"
        assert np.array_equal(output[~mask], image[~mask])
    finally:
        assert proc.stop() == 0
