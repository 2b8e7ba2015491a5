"""Container health probe: exit 0 when the local server is healthy, 1 otherwise.

    python -m common.healthcheck ic.v1.Classifier     # gRPC health of a named service
    python -m common.healthcheck --http /healthz      # an HTTP URL path of the gateway

No registry image (grpc_health_probe, curl) is needed: the probe runs with the
service's own interpreter. The gRPC port is $IC_GRPC_PORT (as the server reads
it), the HTTP port $IC_HTTP_PORT, both on the loopback interface, so the probe
checks the very process that serves in this container.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

DEFAULT_TIMEOUT_S = 3.0


def grpc_serving(address: str, service: str, timeout: float) -> tuple[bool, str]:
    """Whether the gRPC health service at `address` reports `service` SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return False, f"{address} {service or '(server)'}: {exc.code().name} {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{service}: {status}"


def http_ok(url: str, timeout: float) -> tuple[bool, str]:
    """Whether GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", nargs="?", default="", help="gRPC health service name")
    parser.add_argument("--http", metavar="PATH", help="check an HTTP path instead of gRPC")
    parser.add_argument("--port", type=int, help="port (default: $IC_GRPC_PORT / $IC_HTTP_PORT)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args(argv)

    if args.http:
        port = args.port or int(os.environ.get("IC_HTTP_PORT") or 8080)
        healthy, detail = http_ok(f"http://127.0.0.1:{port}{args.http}", args.timeout)
    else:
        port = args.port or int(os.environ.get("IC_GRPC_PORT") or 0)
        if not port:
            parser.error("no port: pass --port or set IC_GRPC_PORT")
        healthy, detail = grpc_serving(f"127.0.0.1:{port}", args.service, args.timeout)
    print(detail, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
