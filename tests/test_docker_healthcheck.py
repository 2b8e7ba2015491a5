"""The containers' health probe (`python -m common.healthcheck`),
run as the HEALTHCHECKs run it, against real local processes (no Docker)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading

import pytest

from tests.support.processes import REPO, free_port


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "common.healthcheck", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_grpc_probe_passes_for_a_serving_service(inpainter_service):
    result = probe("ic.v1.Inpainter", "--port", str(inpainter_service.port))
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout


def test_grpc_probe_fails_for_an_unknown_service_name(inpainter_service):
    result = probe("ic.v1.NoSuchService", "--port", str(inpainter_service.port))
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr


def test_grpc_probe_fails_when_nothing_listens():
    result = probe("ic.v1.Inpainter", "--port", str(free_port()), "--timeout", "0.5")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


def test_grpc_probe_reads_the_port_from_the_environment(inpainter_service):
    env = {"IC_GRPC_PORT": str(inpainter_service.port), "PATH": "/usr/bin:/bin"}
    assert probe("ic.v1.Inpainter", env=env).returncode == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_probe_follows_the_status_code(http_server):
    assert probe("--http", "/healthz", "--port", str(http_server)).returncode == 0
    failing = probe("--http", "/readyz", "--port", str(http_server))
    assert failing.returncode == 1 and "503" in failing.stderr
    assert probe("--http", "/healthz", "--port", str(free_port())).returncode == 1
