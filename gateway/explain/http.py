"""POST /api/v1/explain: the HTTP face of the explainer (API.md, "Explain").

The work runs in a thread of its own while the request thread watches the
client: with `Accept: application/x-ndjson` it streams `{"done", "total"}`
lines and then the answer; either way it polls the client's socket, and when
the client has gone it cancels every gRPC call of the explanation, so the
inpainter and the classifier stop working for nobody.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator

import grpc
from flask import Blueprint, Response, current_app, request

from common.config import env_int
from common.errors import InvalidInput, NotFound, ServiceCallFailed, Unavailable
from common.images import encode_png
from gateway.clients import call_metadata, clients, require_model_info
from gateway.errors import ApiError, from_input_error, from_rpc_error
from gateway.explain import core
from gateway.explain.explainer import ClassInfo, Explainer, ExplainLimits, ExplainOptions
from gateway.explain.faithfulness import measure
from gateway.explain.pipeline import Cancelled, CancelScope, PipelineSettings
from gateway.fields import (
    COMPETITORS,
    FAITHFULNESS,
    FIX,
    FIX_FRACTION,
    STRIDE,
    TARGET,
    WINDOW,
)
from gateway.forms import parse_backend, read_image, require_multipart

log = logging.getLogger(__name__)

explain_blueprint = Blueprint("explain", __name__, url_prefix="/api/v1")

NDJSON = "application/x-ndjson"
POLL_S = 0.1
# An answer nobody will read (the client went away): nginx's "client closed request".
CLIENT_CLOSED = 499


# -- reading the request -------------------------------------------------------


def read_options() -> tuple[ExplainOptions, bool]:
    limits = current_app.config["IC_EXPLAIN"]["limits"]
    options = ExplainOptions(
        target=TARGET.read(),
        window=WINDOW.read(),
        stride=STRIDE.read(),
        competitors=COMPETITORS.read(maximum=limits.max_competitors),
        fix=FIX.read(),
        fix_fraction=FIX_FRACTION.read(maximum=limits.max_fix_fraction),
    )
    return options, FAITHFULNESS.read()


def wants_stream() -> bool:
    return any(kind == NDJSON and quality > 0 for kind, quality in request.accept_mimetypes)


def client_socket() -> socket.socket | None:
    """The client connection under gunicorn or Werkzeug's server, if exposed."""
    return request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")


def client_gone(sock: socket.socket | None) -> bool:
    """True once the client closed its end (EOF or reset). A request body was
    read completely before we get here, so no data is pending on a live socket."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


# -- the answer ------------------------------------------------------------------


def _png(gray) -> str:
    return base64.b64encode(encode_png(gray)).decode("ascii")


def class_json(info: ClassInfo) -> dict:
    return {
        "class_id": info.class_id,
        "label": info.label,
        "probability": info.probability,
        "rank": info.rank,
    }


def map_json(raw) -> dict:
    gray, low, high = core.to_gray8(raw)
    return {"png": _png(gray), "min": low, "max": high, "unit": "bits"}


def explanation_json(explanation, fallback: bool) -> dict:
    grid, maps = explanation.grid, explanation.maps
    body = {
        "target": class_json(explanation.target),
        "hinder": map_json(maps.hinder),
        "support": map_json(maps.support),
        "competitors": [
            {**class_json(info), **map_json(raw)}
            for info, raw in zip(explanation.competitors, maps.competitors, strict=True)
        ],
        "windows": grid.count,
        "window": grid.window,
        "stride": grid.stride,
        "width": grid.width,
        "height": grid.height,
        "backend": explanation.engine,
        "fallback": fallback,
        "laplace": {"n": core.LAPLACE_N, "k": core.LAPLACE_K},
    }
    fix = explanation.fix
    if fix is not None:
        body["fix"] = {
            "applied": fix.image is not None,
            "fraction": float(fix.mask.mean()),
            "mask": _png(fix.mask.astype("uint8") * 255),
            "probability_before": explanation.target.probability,
            "rank_before": explanation.target.rank,
            "backend": fix.engine,
        }
        if fix.image is not None:
            body["fix"].update(
                image=_png(fix.image),
                target=class_json(fix.target),
                top1=class_json(fix.top1),
                became_top1=fix.became_top1,
            )
        else:
            body["fix"]["message"] = "no region hinders the target: nothing to remove"
    return body


# -- running it --------------------------------------------------------------------


class ExplainJob:
    """The explanation in a thread; events ("progress" | "result" | "error", payload)
    arrive on a queue for the request thread."""

    def __init__(
        self,
        work: Callable[[CancelScope, Callable[[int, int], None]], dict],
        slots: threading.BoundedSemaphore,
    ) -> None:
        self.slots = slots
        self.events: queue.Queue = queue.Queue()
        self.scope = CancelScope()
        context = contextvars.copy_context()  # the request id, for the logs
        self.thread = threading.Thread(
            target=context.run, args=(self._run, work), name="explain", daemon=True
        )
        self.thread.start()

    def _run(self, work) -> None:
        def progress(done: int, total: int) -> None:
            self.events.put(("progress", {"done": done, "total": total}))

        try:
            self.events.put(("result", work(self.scope, progress)))
        except BaseException as exc:
            self.events.put(("error", exc))
        finally:
            self.slots.release()

    def cancel(self) -> None:
        self.scope.cancel()

    def events_until_done(self, sock) -> Iterator[tuple[str, object]]:
        """Events as they come; ("gone", None) when the client left (work cancelled)."""
        while True:
            try:
                kind, payload = self.events.get(timeout=POLL_S)
            except queue.Empty:
                if client_gone(sock):
                    self.cancel()
                    log.info("client gone: explanation cancelled")
                    yield "gone", None
                    return
                continue
            yield kind, payload
            if kind != "progress":
                return


def api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InvalidInput):
        return from_input_error(exc)
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(exc, "inpainting or classifier")
    if isinstance(exc, ServiceCallFailed):
        return from_rpc_error(exc.error, exc.service)
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, Unavailable):
        return ApiError(503, "unavailable", str(exc))
    if isinstance(exc, Cancelled):
        return ApiError(503, "unavailable", f"the explanation was cancelled: {exc}")
    log.error("explanation failed", exc_info=exc)
    return ApiError(500, "internal", f"internal error: {type(exc).__name__}")


def error_line(error: ApiError) -> str:
    return json.dumps({"error": {"code": error.code, "message": error.message}}) + "\n"


@explain_blueprint.post("/explain")
def explain():
    require_multipart()
    model = require_model_info()
    rgb = read_image()
    options, with_faithfulness = read_options()
    backend = parse_backend()
    settings = current_app.config["IC_EXPLAIN"]
    metadata = call_metadata()
    current = clients()
    explainer = Explainer(
        current.classifier.stub,
        model.num_classes,
        settings["pipeline"],
        settings["limits"],
        metadata=lambda: metadata,
    )
    grid = explainer.check(options, rgb.shape[1], rgb.shape[0])  # 400 before any work
    engine, address = current.backends.plan(backend)[0]
    fallback = engine != (backend or current.backends.default_name())

    def work(scope: CancelScope, progress) -> dict:
        explanation = explainer.explain(rgb, options, address.stub, engine, scope, progress)
        body = explanation_json(explanation, fallback)
        if with_faithfulness:
            score = measure(explainer, rgb, explanation, address.stub, engine, scope)
            body["faithfulness"] = score.to_json()
        body["timing_ms"] = {k: round(v, 2) for k, v in explanation.timing_ms.items()}
        return body

    slots = current_app.config["IC_EXPLAIN"]["slots"]
    if not slots.acquire(blocking=False):
        raise ApiError(
            429,
            "resource_exhausted",
            f"{settings['max_concurrent']} explanations are already running in this gateway "
            "process; try again when one has finished",
        )
    try:
        job = ExplainJob(work, slots)
    except BaseException:
        slots.release()
        raise
    sock = client_socket()
    if wants_stream():

        def lines() -> Iterator[str]:
            try:
                yield json.dumps({"done": 0, "total": grid.count}) + "\n"
                for kind, payload in job.events_until_done(sock):
                    if kind == "progress" or kind == "result":
                        yield json.dumps(payload) + "\n"
                    elif kind == "error":
                        yield error_line(api_error(payload))
            finally:
                job.cancel()  # a no-op when finished; stops the work if the client left

        return Response(lines(), mimetype=NDJSON, headers={"X-Accel-Buffering": "no"})

    for kind, payload in job.events_until_done(sock):
        if kind == "result":
            return payload
        if kind == "error":
            raise api_error(payload)
        if kind == "gone":
            return Response(status=CLIENT_CLOSED)
    raise ApiError(500, "internal", "the explanation ended without an answer")


def install(app) -> None:
    # Each explanation keeps both services busy for about a second: a few at
    # once per gateway process, the others are told to come back (429).
    max_concurrent = max(1, env_int("IC_EXPLAIN_MAX_CONCURRENT", 4))
    app.config["IC_EXPLAIN"] = {
        "pipeline": PipelineSettings.from_env(),
        "limits": ExplainLimits.from_env(),
        "max_concurrent": max_concurrent,
        "slots": threading.BoundedSemaphore(max_concurrent),
    }
    app.register_blueprint(explain_blueprint)
