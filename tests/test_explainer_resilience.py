"""Degrade, don't fail, for explanations: an inpainting backend that dies in the
middle of one, the explainer itself down (explain alone is unavailable), the
classifier down behind a healthy explainer. Each test owns what it kills."""

from __future__ import annotations

import json

from tests.conftest import classifier_process
from tests.explainer_fixtures import ExplainerProcess
from tests.gateway_fixtures import GatewayProcess, wait_until
from tests.support.processes import ServiceProcess, grpc_health_status
from tests.support.tools import require


def inpainter_process(module: str) -> ServiceProcess:
    return ServiceProcess(module, health_service="ic.v1.Inpainter")


def test_a_backend_killed_during_an_explanation_is_replaced_and_reported(
    classifier_service, photo_bytes
):
    with (
        inpainter_process("services.inpainter") as opencv,
        inpainter_process("services.patchmatch") as patchmatch,
        ExplainerProcess(
            classifier_service.address, [opencv.address, patchmatch.address]
        ) as explainer,
        GatewayProcess(
            classifier_service.address,
            [opencv.address, patchmatch.address],
            explainer=explainer.address,
        ) as gateway,
    ):
        engines = {b["name"]: b for b in gateway.get("/api/v1/info").json()["backends"]}
        require(engines["patchmatch"]["available"], "the PatchMatch engine", "run `make native`")
        reply = gateway.post(
            "/api/v1/explain",
            files={"image": ("soccer.jpg", photo_bytes("soccer"))},
            data={"backend": "patchmatch", "window": "48", "stride": "8"},
            headers={"Accept": "application/x-ndjson"},
            stream=True,
        )
        assert reply.status_code == 200, reply.text
        lines = []
        for raw in reply.iter_lines():
            if not raw:
                continue
            lines.append(json.loads(raw))
            if lines[-1].get("done", 0) >= 32 and patchmatch.proc.poll() is None:
                patchmatch.kill()  # a crash, mid-explanation
        final = lines[-1]
        assert "error" not in final, final
        assert final["final"] is True and final["windows"] == 576
        assert final["fallback"] is True
        used = {item["backend"]: item["windows"] for item in final["backends_used"]}
        assert set(used) == {"patchmatch", "telea"}, used
        assert used["patchmatch"] >= 32 and sum(used.values()) == 576
        assert final["backend"] == max(used, key=used.get)
        assert (
            explainer.metric(
                "ic_explain_backend_fallbacks_total", from_engine="patchmatch", to_engine="telea"
            )
            >= 1
        )
        # The next explanation asking for patchmatch falls back from the start.
        again = gateway.post(
            "/api/v1/explain",
            files={"image": ("soccer.jpg", photo_bytes("soccer"))},
            data={"backend": "patchmatch", "window": "113", "stride": "57"},
        )
        assert again.status_code == 200, again.text
        assert (again.json()["backend"], again.json()["fallback"]) == ("telea", True)


def test_a_service_killed_during_an_explanation_is_replaced_by_another_with_the_engine(
    classifier_service, photo_rgb
):
    """Two OpenCV inpainting services: one dies in the middle; its windows go
    on with the same engine on the other, so nothing falls back."""
    with (
        inpainter_process("services.inpainter") as first,
        inpainter_process("services.inpainter") as second,
        ExplainerProcess(classifier_service.address, [first.address, second.address]) as explainer,
    ):
        result = explain_killing(explainer, photo_rgb("soccer"), first)
        assert [(b.engine, b.windows) for b in result.backends_used] == [("telea", 576)]
        assert (result.backend, result.fallback) == ("telea", False)


def test_a_stream_cut_under_a_live_service_resumes_on_the_same_engine(
    classifier_service, photo_rgb
):
    """The inpainter closes every connection after 0.5 s, cutting a stream still
    running 50 ms later (an aged-out connection under a long stream, a replica
    gone behind a name): the service still answers its health check, so the
    stream resumes there, as often as needed. (A grace longer than one stream
    lasts would let a fast machine finish every stream uncut.)"""
    with (
        ServiceProcess(
            "services.inpainter",
            env={"IC_MAX_CONNECTION_AGE_S": "0.5", "IC_MAX_CONNECTION_AGE_GRACE_S": "0.05"},
            health_service="ic.v1.Inpainter",
        ) as inpainter,
        ExplainerProcess(classifier_service.address, [inpainter.address]) as explainer,
    ):
        result = explain_killing(explainer, photo_rgb("soccer"), None)
        assert [(b.engine, b.windows) for b in result.backends_used] == [("telea", 576)]
        assert result.fallback is False
        log = explainer.log_path.read_text(errors="replace")
        assert "resuming on the same engine" in log


def explain_killing(explainer, rgb, victim: ServiceProcess | None):
    """Explain with 576 windows, killing `victim` once 32 are done; the result."""
    from common.images import raw_image
    from ic.v1 import explainer_pb2

    stream = explainer.stub().Explain(
        explainer_pb2.ExplainRequest(image=raw_image(rgb), window=48, stride=8), timeout=300
    )
    result = None
    for event in stream:
        if victim is not None and event.HasField("progress") and event.progress.done >= 32:
            victim.kill()
        if event.HasField("result"):
            result = event.result
    assert result is not None and result.maps.windows == 576
    return result


def test_with_the_explainer_down_only_explain_is_unavailable(
    classifier_service, inpainter_service, photo_bytes, stroke_png
):
    explainer = ExplainerProcess(classifier_service.address, [inpainter_service.address]).start()
    try:
        with GatewayProcess(
            classifier_service.address, [inpainter_service.address], explainer=explainer.address
        ) as gateway:
            assert gateway.get("/api/v1/info").json()["explain"] == {
                "available": True,
                "reason": "",
            }
            explainer.kill()
            image = {"image": ("soccer.jpg", photo_bytes("soccer"))}
            reply = gateway.post("/api/v1/explain", files=image)
            assert reply.status_code == 503, reply.text
            message = reply.json()["error"]["message"]
            assert "explainer" in message and "not reachable" in message
            # The brush does not need it: readiness stays green, edits work.
            assert gateway.get("/readyz").status_code == 200
            edit = gateway.post("/api/v1/edit", files={**image, "mask": ("m.png", stroke_png)})
            assert edit.status_code == 200 and edit.json()["predictions"]
            info = gateway.get("/api/v1/info").json()["explain"]
            assert info["available"] is False
            assert "explainer" in info["reason"] and str(explainer.port) in info["reason"]

            # Back on its port: explain works again, with no gateway restart.
            restarted = ExplainerProcess(
                classifier_service.address,
                [inpainter_service.address],
                IC_GRPC_PORT=str(explainer.port),
            )
            restarted.port = explainer.port
            with restarted:
                wait_until(
                    lambda: gateway.get("/api/v1/info").json()["explain"]["available"],
                    what="explain available again",
                )
                back = gateway.post("/api/v1/explain", files=image, data={"window": "113"})
                assert back.status_code == 200, back.text
    finally:
        explainer.stop()


def test_a_classifier_down_behind_the_explainer_is_named_as_such(
    model_path, inpainter_service, photo_bytes
):
    with (
        classifier_process(model_path) as classifier,
        ExplainerProcess(classifier.address, [inpainter_service.address]) as explainer,
        GatewayProcess(
            classifier.address, [inpainter_service.address], explainer=explainer.address
        ) as gateway,
    ):
        classifier.kill()
        reply = gateway.post(
            "/api/v1/explain", files={"image": ("soccer.jpg", photo_bytes("soccer"))}
        )
        assert reply.status_code == 503, reply.text
        message = reply.json()["error"]["message"]
        assert "classifier" in message and "explainer service is not" not in message
        # The explainer itself stays healthy: it is not the one to restart.
        assert grpc_health_status(explainer.address, "ic.v1.Explainer") == 1  # SERVING
