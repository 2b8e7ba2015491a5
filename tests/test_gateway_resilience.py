"""Degrade, don't fail: backends dying and coming back, deadlines, rate limits.

Each test owns the processes it kills, so the session's services stay up.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import classifier_process
from tests.gateway_fixtures import GatewayProcess, png_bytes, wait_until
from tests.support.processes import ServiceProcess, free_port
from tests.support.tools import require


def inpainter_process(module: str) -> ServiceProcess:
    return ServiceProcess(module, health_service="ic.v1.Inpainter")


def backends_of(gateway) -> dict[str, dict]:
    return {b["name"]: b for b in gateway.get("/api/v1/info").json()["backends"]}


def test_inpaint_falls_back_when_the_patchmatch_service_dies(
    classifier_service, photo_bytes, stroke_png
):
    with (
        inpainter_process("services.inpainter") as opencv,
        inpainter_process("services.patchmatch") as patchmatch,
        GatewayProcess(classifier_service.address, [opencv.address, patchmatch.address]) as gw,
    ):
        require(
            backends_of(gw)["patchmatch"]["available"],
            "the PatchMatch engine",
            "build it with `make native`",
        )
        parts = {"image": photo_bytes("soccer"), "mask": stroke_png}
        before = gw.post("/api/v1/inpaint", files=parts, data={"backend": "patchmatch"}).json()
        assert (before["backend"], before["fallback"]) == ("patchmatch", False)

        patchmatch.kill()
        after = gw.post("/api/v1/inpaint", files=parts, data={"backend": "patchmatch"})
        assert after.status_code == 200, after.text
        assert (after.json()["backend"], after.json()["fallback"]) == ("telea", True)
        edit = gw.post("/api/v1/edit", files=parts, data={"backend": "patchmatch"}).json()
        assert (edit["backend"], edit["fallback"]) == ("telea", True)
        assert edit["predictions"]
        wait_until(lambda: backends_of(gw)["patchmatch"]["available"] is False, what="info")
        assert backends_of(gw)["telea"]["available"] is True
        assert gw.get("/readyz").status_code == 200  # one inpainting backend is enough

        opencv.kill()
        none_left = gw.post("/api/v1/inpaint", files=parts, data={"backend": "patchmatch"})
        assert none_left.status_code == 503, none_left.text
        assert none_left.json()["error"]["code"] == "unavailable"
        assert "no inpainting backend" in none_left.json()["error"]["message"]
        not_ready = gw.get("/readyz")
        assert not_ready.status_code == 503
        assert "every inpainting backend" in not_ready.json()["error"]["message"]


def test_readyz_follows_the_classifier_down_and_back_up(model_path, inpainter_service, photo_bytes):
    first = classifier_process(model_path).start()
    port = first.port
    try:
        with GatewayProcess(first.address, [inpainter_service.address]) as gw:
            assert gw.get("/readyz").status_code == 200
            first.kill()
            down = gw.get("/readyz")
            assert down.status_code == 503
            message = down.json()["error"]["message"]
            assert "classifier" in message and str(port) in message
            classify = gw.post("/api/v1/classify", files={"image": photo_bytes("soccer")})
            assert classify.status_code == 503
            assert "classifier" in classify.json()["error"]["message"]

            second = ServiceProcess(
                "services.classifier",
                port=port,
                env=first.env | {"IC_GRPC_PORT": str(port)},
                health_service="ic.v1.Classifier",
            ).start()
            try:
                wait_until(lambda: gw.get("/readyz").status_code == 200, what="/readyz 200")
                again = gw.post("/api/v1/classify", files={"image": photo_bytes("soccer")})
                assert again.status_code == 200
                assert again.json()["predictions"][0]["label"] == "soccer ball"
            finally:
                second.stop()
    finally:
        first.stop()


@pytest.fixture(scope="module")
def impatient_gateway(classifier_service, inpainter_service):
    """Deadlines far shorter than any real call: every call misses it."""
    with GatewayProcess(
        classifier_service.address,
        [inpainter_service.address],
        IC_CLASSIFY_TIMEOUT_S="0.001",
        IC_INPAINT_TIMEOUT_S="0.001",
    ) as gw:
        yield gw


def test_a_missed_classifier_deadline_is_504(impatient_gateway, photo_bytes):
    reply = impatient_gateway.post("/api/v1/classify", files={"image": photo_bytes("soccer")})
    assert reply.status_code == 504, reply.text
    error = reply.json()["error"]
    assert error["code"] == "deadline_exceeded" and "classifier" in error["message"]


def test_a_missed_inpainter_deadline_is_504(impatient_gateway, photo_bytes, stroke_png):
    reply = impatient_gateway.post(
        "/api/v1/inpaint", files={"image": photo_bytes("soccer"), "mask": stroke_png}
    )
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["code"] == "deadline_exceeded"


def test_rate_limit_answers_429_then_recovers_nothing_else(
    classifier_service, inpainter_service, photo_bytes
):
    with GatewayProcess(
        classifier_service.address, [inpainter_service.address], IC_RATE_LIMIT_PER_MIN="3"
    ) as gw:
        image = {"image": photo_bytes("soccer")}
        statuses = [gw.post("/api/v1/classify", files=image).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = gw.post("/api/v1/classify", files=image)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "3 per minute" in limited.json()["error"]["message"]
        assert int(limited.headers["Retry-After"]) >= 1
        # Reading is not limited: the page can still load.
        assert gw.get("/api/v1/info").status_code == 200
        assert gw.get("/healthz").status_code == 200


def test_several_workers_answer_and_metrics_add_up(classifier_service, inpainter_service):
    """gunicorn with two workers: each opens its own channels after the fork, and
    /metrics counts the requests of both, whichever worker answers /metrics."""
    with GatewayProcess(
        classifier_service.address, [inpainter_service.address], IC_GATEWAY_WORKERS="2"
    ) as gw:
        workers = collections.Counter()
        # Which worker accepts a new connection is the kernel's choice; ask until
        # both have answered a good number of requests.
        for _ in range(400):
            reply = gw.get("/api/v1/info")
            assert reply.status_code == 200
            workers[reply.json()["served_by"]["gateway"]] += 1
            if len(workers) == 2 and min(workers.values()) >= 5:
                break
        assert len(workers) == 2, f"one worker answered every request: {workers}"
        counted = 0.0
        for _ in range(4):  # each /metrics may come from either worker: all must add up
            text = gw.get("/metrics").text
            counted = sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "ic_http_requests_total"
                and sample.labels.get("route") == "/api/v1/info"
            )
            assert counted >= sum(workers.values())


def test_no_inpainting_service_at_all_is_503_not_404(classifier_service, photo_bytes, stroke_png):
    nobody = f"127.0.0.1:{free_port()}"
    with GatewayProcess(classifier_service.address, [nobody], wait_ready=False) as gw:
        reply = gw.post(
            "/api/v1/inpaint", files={"image": photo_bytes("soccer"), "mask": stroke_png}
        )
        assert reply.status_code == 503, reply.text
        assert "no inpainting backend has answered" in reply.json()["error"]["message"]
        assert nobody in reply.json()["error"]["message"]
        ready = gw.get("/readyz")
        assert ready.status_code == 503
        assert "every inpainting backend" in ready.json()["error"]["message"]
        # Classification does not need an inpainter.
        classify = gw.post("/api/v1/classify", files={"image": photo_bytes("soccer")})
        assert classify.status_code == 200


def test_large_images_queue_on_the_pixel_budget_then_get_429(
    classifier_service, patchmatch_service, photo_rgb
):
    """A gateway process decodes at most IC_MAX_PIXELS_IN_FLIGHT pixels at once:
    here one 1024x1024 photo. While a slow edit (PatchMatch filling a large
    hole) holds its photo, another request waits, and after IC_PIXEL_WAIT_S it
    is told to come back (429); once the edit is done the same request goes
    through."""
    big = np.asarray(Image.fromarray(photo_rgb("soccer")).resize((1024, 1024)))
    mask = np.zeros((1024, 1024), np.uint8)
    mask[300:700, 300:700] = 255
    with GatewayProcess(
        classifier_service.address,
        [patchmatch_service.address],
        IC_DEFAULT_BACKEND="patchmatch",
        IC_MAX_PIXELS_IN_FLIGHT=str(1024 * 1024),
        IC_PIXEL_WAIT_S="0.3",
    ) as gw:
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                gw.post, "/api/v1/edit", files={"image": png_bytes(big), "mask": png_bytes(mask)}
            )
            wait_until(lambda: budget_in_use(gw) > 0, 30, "the slow edit to hold its pixels")
            busy = gw.post("/api/v1/classify", files={"image": png_bytes(photo_rgb("soccer"))})
            assert busy.status_code == 429, busy.text
            assert busy.json()["error"]["code"] == "resource_exhausted"
            assert "busy with large images" in busy.json()["error"]["message"]
            assert busy.headers["Retry-After"] == "5"
            assert slow.result().status_code == 200
        again = gw.post("/api/v1/classify", files={"image": png_bytes(photo_rgb("soccer"))})
        assert again.status_code == 200
        assert budget_in_use(gw) == 0


def budget_in_use(gw) -> float:
    text = gw.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ic_gateway_pixels_in_flight"
    )
