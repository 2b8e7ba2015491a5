"""Start the project's real processes on free loopback ports and wait until ready.

A `ServiceProcess` runs `python -m <module>` with the given environment, waits
for its gRPC health (or an HTTP URL) to say it is ready, and on exit sends
SIGTERM (the graceful path) before SIGKILL. Output goes to a log file under
`artifacts/logs/` so a failing test can show what the service said.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def grpc_health_status(address: str, service: str = "", timeout: float = 1.0) -> int | None:
    """The health status of `service` at `address`, or None when it does not answer."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            ).status
        except grpc.RpcError:
            return None


class ServiceProcess:
    """`python -m module` on a free port; a context manager."""

    def __init__(
        self,
        module: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        health_service: str | None = None,
        ready_url: str | None = None,
        args: list[str] | None = None,
        name: str | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.module = module
        self.port = port or free_port()
        self.name = name or f"{module.replace('.', '_')}_{self.port}"
        self.health_service = health_service
        self.ready_url = ready_url
        self.args = args or []
        self.startup_timeout = startup_timeout
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "IC_GRPC_HOST": "127.0.0.1",
            "IC_GRPC_PORT": str(self.port),
            "IC_METRICS_PORT": "0",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = ARTIFACTS / "logs" / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.module} not ready after {self.startup_timeout}s:\n{self.log_tail()}"
        )

    def is_ready(self) -> bool:
        if self.ready_url:
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False
        status = grpc_health_status(self.address, self.health_service or "")
        return status == health_pb2.HealthCheckResponse.SERVING

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """Die without warning (SIGKILL), as a crashed replica would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
