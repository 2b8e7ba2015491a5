"""POST /api/v1/explain: a relay to the Explainer service (API.md, "Explain").

The form is parsed and the image checked here (400/413/415 before any call);
then one Explain stream is opened. Its first event is awaited before the
answer starts, so whatever the explainer refuses (a bad option, an unknown
backend, a dependency down, too many explanations) gets its own HTTP status.
Then, with `Accept: application/x-ndjson`, every event becomes a JSON line as
it comes (progress, the coarse pass's preview maps, the result); otherwise the
result alone is the answer. While it waits, a watcher polls the client's
socket: when the client has gone, the stream is cancelled, and the explainer
cancels everything it asked of the inpainters and the classifier.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import grpc
from flask import Blueprint, Response, request

from common.config import replica_name
from common.errors import ERROR_SOURCE_KEY
from common.images import raw_image
from gateway.clients import clients
from gateway.errors import ApiError, from_rpc_error, not_found
from gateway.explain.answer import maps_json, progress_json, result_json
from gateway.fields import (
    COMPETITORS,
    FAITHFULNESS,
    FIX,
    FIX_FRACTION,
    MODEL,
    STRIDE,
    TARGET,
    WINDOW,
)
from gateway.forms import parse_backend, read_image, require_multipart
from gateway.jsonbody import dumps
from ic.v1 import explainer_pb2

log = logging.getLogger(__name__)

explain_blueprint = Blueprint("explain", __name__, url_prefix="/api/v1")

NDJSON = "application/x-ndjson"
POLL_S = 0.1
# An answer nobody will read (the client went away): nginx's "client closed request".
CLIENT_CLOSED = 499
EXPLAINER = "explainer"


# -- the request ---------------------------------------------------------------


def parse_model() -> str:
    name = MODEL.text()
    if name is None:
        return ""
    if len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise not_found(f"unknown model {name[:64]!r}")
    return name


def explain_request(streaming: bool) -> explainer_pb2.ExplainRequest:
    """The ExplainRequest of the current HTTP request; parts unset stay unset,
    so the explainer's defaults (and limits) apply."""
    rgb = read_image()
    message = explainer_pb2.ExplainRequest(
        image=raw_image(rgb),
        backend=parse_backend() or "",
        fix=FIX.read(),
        faithfulness=FAITHFULNESS.read(),
        model=parse_model(),
        preview=streaming,
    )
    for part, field in (
        (TARGET, "target"),
        (WINDOW, "window"),
        (STRIDE, "stride"),
        (COMPETITORS, "competitors"),
        (FIX_FRACTION, "fix_fraction"),
    ):
        if part.text() is not None:
            setattr(message, field, part.read())
    return message


def wants_stream() -> bool:
    return any(kind == NDJSON and quality > 0 for kind, quality in request.accept_mimetypes)


# -- the client going away ---------------------------------------------------------


def client_socket() -> socket.socket | None:
    """The client connection under gunicorn or Werkzeug's server, if exposed."""
    return request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")


def client_gone(sock: socket.socket | None) -> bool:
    """True once the client closed its end (EOF or reset). The request body was
    read completely before we get here, so no data is pending on a live socket."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class ClientWatch:
    """Cancels `stream` once the client has closed its connection."""

    def __init__(self, sock: socket.socket | None, stream) -> None:
        self.sock = sock
        self.stream = stream
        self.gone = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="explain-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            if client_gone(self.sock):
                self.gone = True
                log.info("client gone: explanation cancelled")
                self.stream.cancel()
                return

    def stop(self) -> None:
        self._stop.set()


# -- errors ------------------------------------------------------------------------


def explain_error(exc: grpc.RpcError) -> ApiError:
    """What a failed Explain stream means for the HTTP caller. The explainer
    marks its own errors (trailing metadata): those are passed on in its words,
    or as the failure of the service it names; without the mark the explainer
    itself did not answer."""
    trailing = dict(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else {}
    source = trailing.get(ERROR_SOURCE_KEY)
    if source is None:
        return from_rpc_error(exc, EXPLAINER)
    error = from_rpc_error(exc, source)
    if source == EXPLAINER:
        error.message = exc.details() or error.message
    return error


def error_line(error: ApiError) -> str:
    return json.dumps({"error": {"code": error.code, "message": error.message}}) + "\n"


# -- the endpoint --------------------------------------------------------------------


@explain_blueprint.post("/explain")
def explain():
    started = time.perf_counter()
    require_multipart()
    streaming = wants_stream()
    message = explain_request(streaming)
    stream = clients().explainer.explain(message)
    watch = ClientWatch(client_socket(), stream)
    try:
        first = next(stream)
    except grpc.RpcError as exc:
        watch.stop()
        if watch.gone:
            return Response(status=CLIENT_CLOSED)
        raise explain_error(exc) from exc
    except StopIteration:
        watch.stop()
        raise ApiError(
            502, "bad_gateway", "the explainer ended the stream without an answer"
        ) from None
    if streaming:
        return Response(
            ndjson_lines(first, stream, watch, started),
            mimetype=NDJSON,
            headers={"X-Accel-Buffering": "no"},
        )
    try:
        for event in stream:
            if event.WhichOneof("event") == "result":
                return Response(
                    dumps(final_json(event.result, started)), mimetype="application/json"
                )
    except grpc.RpcError as exc:
        if watch.gone:
            return Response(status=CLIENT_CLOSED)
        raise explain_error(exc) from exc
    finally:
        watch.stop()
        stream.cancel()  # a no-op when it ended
    raise ApiError(502, "bad_gateway", "the explainer ended the stream without an answer")


def final_json(result: explainer_pb2.ExplainResult, started: float) -> dict:
    body = result_json(result)
    timing = {key: round(value, 2) for key, value in result.timing_ms.items()}
    timing["gateway_total"] = round((time.perf_counter() - started) * 1e3, 2)
    body["timing_ms"] = timing
    body["served_by"] = {"gateway": replica_name(), "explainer": result.served_by}
    return body


def ndjson_lines(first, stream, watch: ClientWatch, started: float) -> Iterator[bytes]:
    """Every event as a JSON line; an error after the first line is a last line
    of its own (the status is sent already)."""
    try:
        for event in _chain(first, stream):
            kind = event.WhichOneof("event")
            if kind == "progress":
                yield dumps(progress_json(event.progress)) + b"\n"
            elif kind == "preview":
                yield dumps(maps_json(event.preview)) + b"\n"
            elif kind == "result":
                yield dumps(final_json(event.result, started)) + b"\n"
    except grpc.RpcError as exc:
        if not watch.gone:
            yield error_line(explain_error(exc)).encode()
    finally:
        watch.stop()
        stream.cancel()  # a no-op when it ended; stops the work if the client left


def _chain(first, rest) -> Iterator:
    yield first
    yield from rest


def install(app) -> None:
    app.register_blueprint(explain_blueprint)
