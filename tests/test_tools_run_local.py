"""tools/run_local (`make run`): everything comes up, the page is served, and
Ctrl-C stops every child; a killed service is restarted and used again; one
that cannot start is given up (the system goes on without PatchMatch, and
stops without the classifier)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import onnx
import pytest
import requests
from grpc_health.v1 import health_pb2

from tests.gateway_fixtures import wait_until
from tests.support.processes import ARTIFACTS, REPO, free_port, grpc_health_status
from tests.support.served_models import byo_classifier, models_dir_for_tests, write_card

pytestmark = pytest.mark.slow

SERVICES_WITH_PORTS = ("classifier", "inpainter", "patchmatch", "explainer")


class RunLocal:
    def __init__(self, model_path, *extra: str, extra_models: str = "", **ports: int) -> None:
        self.http_port = free_port()
        self.ports = {name: ports.get(name) or free_port() for name in SERVICES_WITH_PORTS}
        args = [
            "--http-port", str(self.http_port),
            *(f"--{name}-port={port}" for name, port in self.ports.items()),
            "--no-metrics",
            *extra,
        ]  # fmt: skip
        log_path = ARTIFACTS / "logs" / f"run_local_{self.http_port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.run_local", *args],
            cwd=REPO,
            env={
                **os.environ,
                "IC_MODELS_DIR": str(models_dir_for_tests(model_path)),
                "IC_EXTRA_MODELS": extra_models,
                "IC_ORT_THREADS": "1",
            },
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r}; saw:\n" + "\n".join(self.seen))

    def child_pids(self) -> dict[str, int]:
        """The latest pid of each child (a restart logs a new one)."""
        return {
            m.group(1): int(m.group(2))
            for line in self.seen
            if (m := re.search(r"started (\w+) \(pid (\d+)\)", line))
        }

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def backends(self) -> dict[str, dict]:
        info = requests.get(self.url("/api/v1/info"), timeout=10).json()
        return {backend["name"]: backend for backend in info["backends"]}

    def close(self) -> None:
        """Ctrl-C, as a person stops it; killed if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent (init) has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture
def start_run_local(model_path):
    runners = []

    def start(*extra: str, extra_models: str = "", **ports: int) -> RunLocal:
        runners.append(RunLocal(model_path, *extra, extra_models=extra_models, **ports))
        return runners[-1]

    yield start
    for runner in runners:
        runner.close()


@pytest.fixture
def run_local(start_run_local):
    return start_run_local()


@pytest.fixture
def busy_port():
    """A port some other program listens on: a service told to use it cannot start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serving(address: str) -> bool:
    return grpc_health_status(address, "ic.v1.Inpainter") == health_pb2.HealthCheckResponse.SERVING


def test_everything_comes_up_and_ctrl_c_stops_it_all(start_run_local, tmp_path):
    # With a model card of the user's own in IC_EXTRA_MODELS.
    onnx.save(byo_classifier(), str(tmp_path / "mine.onnx"))
    run_local = start_run_local(extra_models=str(write_card(tmp_path / "mine.json")))
    url = run_local.wait_for(r"ready: open (http://\S+)").group(1)
    assert url == f"http://localhost:{run_local.http_port}/"
    pids = run_local.child_pids()
    assert set(pids) == {"classifier", "inpainter", "patchmatch", "explainer", "gateway"}
    base = f"http://127.0.0.1:{run_local.http_port}"
    assert requests.get(base + "/readyz", timeout=10).status_code == 200
    assert requests.get(base + "/", timeout=10).status_code == 200
    names = {b["name"] for b in requests.get(base + "/api/v1/info", timeout=10).json()["backends"]}
    assert {"telea", "patchmatch"} <= names
    # IC_EXTRA_MODELS reached the classifier: the user's card is served.
    models = requests.get(base + "/api/v1/models", timeout=10).json()["models"]
    assert {"squeezenet1.1", "efficientnet-lite0", "mine"} <= {m["name"] for m in models}
    wait_until(
        lambda: requests.get(base + "/api/v1/info", timeout=10).json()["explain"]["available"],
        what="the explainer",
    )

    run_local.proc.send_signal(signal.SIGINT)
    assert run_local.proc.wait(60) == 0
    run_local.wait_for(r"all stopped", timeout=5)
    assert all(gone(pid) for pid in pids.values())


def test_killing_run_local_itself_stops_every_service(run_local):
    """SIGKILL gives run_local no chance to stop its children: the kernel tells
    them (they run in their own session, out of reach of Ctrl-C)."""
    run_local.wait_for(r"ready: open")
    pids = run_local.child_pids()
    run_local.proc.kill()
    run_local.proc.wait()
    wait_until(lambda: all(gone(pid) for pid in pids.values()), what="the services to stop")


def test_a_killed_service_is_restarted_and_used_again(run_local, photo_bytes, stroke_png):
    run_local.wait_for(r"ready: open")
    first = run_local.child_pids()
    parts = {"image": photo_bytes("soccer"), "mask": stroke_png}

    os.kill(first["patchmatch"], signal.SIGKILL)
    run_local.wait_for(r"patchmatch exited with code -9; restarting in 1\.0 s \(restart 1\)")
    run_local.wait_for(r"started patchmatch \(pid \d+\)")
    assert run_local.child_pids()["patchmatch"] != first["patchmatch"]
    wait_until(
        lambda: serving(f"127.0.0.1:{run_local.ports['patchmatch']}"),
        timeout=60,
        what="the restarted patchmatch's gRPC health",
    )

    def patchmatch_does_the_work() -> bool:
        answer = requests.post(
            run_local.url("/api/v1/inpaint"),
            files=parts,
            data={"backend": "patchmatch"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return (answer.json()["backend"], answer.json()["fallback"]) == ("patchmatch", False)

    # Until the gateway has reconnected, requests fall back to telea; then
    # patchmatch does the work again.
    wait_until(patchmatch_does_the_work, timeout=30, what="an inpaint by the restarted patchmatch")
    assert run_local.backends()["patchmatch"]["available"] is True

    # An essential service is restarted too, and the gateway finds it again.
    os.kill(first["classifier"], signal.SIGKILL)
    run_local.wait_for(r"classifier exited with code -9; restarting in 1\.0 s \(restart 1\)")
    run_local.wait_for(r"started classifier \(pid \d+\)")

    def classifies() -> bool:
        answer = requests.post(
            run_local.url("/api/v1/classify"), files={"image": photo_bytes("soccer")}, timeout=30
        )
        return answer.status_code == 200 and answer.json()["predictions"][0]["label"] == (
            "soccer ball"
        )

    wait_until(classifies, timeout=60, what="a classification after the classifier's restart")
    assert run_local.proc.poll() is None
    assert not gone(run_local.child_pids()["gateway"])


def test_ctrl_c_during_a_restart_delay_stops_everything(start_run_local):
    run_local = start_run_local("--restart-delay", "600")
    run_local.wait_for(r"ready: open")
    pids = run_local.child_pids()
    os.kill(pids["inpainter"], signal.SIGKILL)
    run_local.wait_for(r"inpainter exited with code -9; restarting in 600\.0 s \(restart 1\)")

    run_local.proc.send_signal(signal.SIGINT)
    assert run_local.proc.wait(60) == 0
    run_local.wait_for(r"all stopped", timeout=5)
    assert all(gone(pid) for pid in pids.values())
    assert run_local.child_pids() == pids  # nothing was started during the delay


def test_a_service_that_cannot_start_is_given_up_and_the_rest_goes_on(
    start_run_local, busy_port, photo_bytes, stroke_png
):
    run_local = start_run_local("--restart-delay", "0.1", patchmatch=busy_port)
    run_local.wait_for(
        r"patchmatch exited with code 1, 5 times in a row within 10 s of starting: "
        r"giving up on it; going on without it \(fallback\)"
    )
    restarts = [line for line in run_local.seen if line.startswith("run_local: patchmatch exited")]
    assert [re.search(r"restarting in ([\d.]+) s", line).group(1) for line in restarts[:-1]] == [
        "0.1",
        "0.2",
        "0.4",
        "0.8",
    ]
    wait_until(
        lambda: requests.get(run_local.url("/readyz"), timeout=10).status_code == 200,
        timeout=120,
        what="/readyz without patchmatch",
    )
    # Never up, so the gateway never learned its engines: it names the silent
    # address instead, and the OpenCV default does the work.
    assert "patchmatch" not in run_local.backends()
    parts = {"image": photo_bytes("soccer"), "mask": stroke_png}
    asked = requests.post(
        run_local.url("/api/v1/inpaint"), files=parts, data={"backend": "patchmatch"}, timeout=60
    )
    assert asked.status_code == 404
    assert f"not answering yet: dns:///localhost:{busy_port}" in asked.json()["error"]["message"]
    default = requests.post(run_local.url("/api/v1/inpaint"), files=parts, timeout=60)
    assert default.status_code == 200, default.text
    assert default.json()["backend"] == "telea"
    assert run_local.proc.poll() is None


def test_an_essential_service_that_cannot_start_stops_everything(start_run_local, busy_port):
    run_local = start_run_local("--restart-delay", "0.1", classifier=busy_port)
    run_local.wait_for(
        r"classifier exited with code 1, 5 times in a row within 10 s of starting: "
        r"giving up; the system cannot work without it"
    )
    assert run_local.proc.wait(60) == 1
    run_local.wait_for(r"all stopped", timeout=5)
    assert all(gone(pid) for pid in run_local.child_pids().values())
