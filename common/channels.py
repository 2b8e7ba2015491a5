"""gRPC client channels (the gateway's and the explainer's): round_robin over
every replica a DNS name resolves to, retries on UNAVAILABLE and server-side
CANCELLED, message limits sized for images, and the health check.

Channels are created on first use in the process that uses them, never at
import time: gRPC's C core does not survive fork(), and gunicorn forks its
workers after loading the app (see gateway/gunicorn.conf.py).
"""

from __future__ import annotations

import json

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Images travel raw between processes: both sides raise gRPC's 4 MB default.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

SERVICES = (
    "ic.v1.Classifier",
    "ic.v1.Inpainter",
    "ic.v1.Segmenter",
    "ic.v1.Explainer",
    "grpc.health.v1.Health",
)

SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": name} for name in SERVICES],
            # A replica that went away (rolling update, crash) is retried on
            # another one; the call's own deadline bounds the total time. A
            # server that shuts down cancels the calls it had accepted but not
            # started: CANCELLED from the server is retried too (every RPC we
            # make only reads, so a retry is always safe; a cancel of our own
            # is never retried by gRPC).
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.02s",
                "maxBackoff": "0.2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
            },
        }
    ],
}


def grpc_target(address: str) -> str:
    """`host:port` -> `dns:///host:port`, so every replica behind a name gets traffic."""
    address = address.strip()
    explicit = ("unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")
    return address if "://" in address or address.startswith(explicit) else f"dns:///{address}"


def open_channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Keep idle connections warm so the next brush stroke does not pay a handshake.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Reconnect quickly after a backend restarts.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.min_reconnect_backoff_ms", 200),
            # Re-resolve DNS at most every 5 s (default 30 s), so replicas added
            # by a scale-up get traffic soon after their first connection closes.
            ("grpc.dns_min_time_between_resolutions_ms", 5_000),
        ],
    )


def check_health(channel: grpc.Channel, service: str, timeout: float) -> tuple[bool, str]:
    """(serving?, what was seen) for one named service behind `channel`."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as exc:
        return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status
