"""Request ids, one JSON access-log line per request, Prometheus metrics.

The request id (`X-Request-ID`, accepted when it looks sane, else generated)
lives in common.logs.request_id_var for the request's duration: every
log line carries it, the gRPC calls send it as `x-request-id` metadata, and
the response echoes it.

Metrics: with several gunicorn workers, set PROMETHEUS_MULTIPROC_DIR (the
gunicorn config and `python -m gateway` do) so /metrics adds up all workers.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from common.logs import request_id_var

log = logging.getLogger("gateway.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

HTTP_REQUESTS = Counter(
    "ic_http_requests_total",
    "HTTP requests answered by the gateway, by route, method and status code.",
    ["route", "method", "code"],
)
HTTP_LATENCY = Histogram(
    "ic_http_request_duration_seconds",
    "Time to answer an HTTP request, in seconds.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)
PIXELS_IN_FLIGHT = Gauge(
    "ic_gateway_pixels_in_flight",
    "Pixels of decoded request images held by requests in progress (the pixel budget).",
    multiprocess_mode="livesum",
)
BACKEND_FALLBACKS = Counter(
    "ic_inpaint_fallbacks_total",
    "Inpaint requests served by another backend than the one asked for.",
    ["requested", "served"],
)


def incoming_request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex


def route_label() -> str:
    """The URL rule, not the path: bounded label values whatever clients send."""
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.request_id = incoming_request_id()
        g.request_id_token = request_id_var.set(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("started", time.perf_counter())
        elapsed = time.perf_counter() - started
        route, method = route_label(), request.method
        HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route, method).observe(elapsed)
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        if route not in ("/healthz", "/metrics"):
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1e3, 2),
                    "client": request.remote_addr,
                },
            )
        return response

    @app.teardown_request
    def _reset(_exc) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)

    @app.get("/metrics")
    def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            payload = generate_latest(registry)
        else:
            payload = generate_latest()
        return Response(payload, mimetype=CONTENT_TYPE_LATEST)
