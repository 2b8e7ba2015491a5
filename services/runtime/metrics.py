"""Prometheus metrics shared by the gRPC services: requests by method and
status code, and latency histograms in seconds."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

GRPC_REQUESTS = Counter(
    "ic_grpc_requests_total",
    "gRPC requests handled, by method and status code.",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "ic_grpc_request_duration_seconds",
    "Time to handle a gRPC request, in seconds.",
    ["service", "method"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)


def start_metrics_server(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on its own port; 0 disables it."""
    if port:
        start_http_server(port, addr=host)
