"""tools/run_local (`make run`): everything comes up, the page is served, and
Ctrl-C stops every child; a dying essential child stops the rest."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.gateway_fixtures import wait_until
from tests.support.processes import ARTIFACTS, REPO, free_port

pytestmark = pytest.mark.slow


class RunLocal:
    def __init__(self, model_path) -> None:
        self.http_port = free_port()
        args = [
            "--http-port", str(self.http_port),
            "--classifier-port", str(free_port()),
            "--inpainter-port", str(free_port()),
            "--patchmatch-port", str(free_port()),
            "--explainer-port", str(free_port()),
            "--no-metrics",
        ]  # fmt: skip
        log_path = ARTIFACTS / "logs" / f"run_local_{self.http_port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.run_local", *args],
            cwd=REPO,
            env={**os.environ, "IC_MODEL_PATH": str(model_path), "IC_ORT_THREADS": "1"},
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
        return {
            m.group(1): int(m.group(2))
            for line in self.seen
            if (m := re.search(r"started (\w+) \(pid (\d+)\)", line))
        }

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def run_local(model_path):
    runner = RunLocal(model_path)
    yield runner
    runner.close()


def test_everything_comes_up_and_ctrl_c_stops_it_all(run_local):
    url = run_local.wait_for(r"ready: open (http://\S+)").group(1)
    assert url == f"http://localhost:{run_local.http_port}/"
    pids = run_local.child_pids()
    assert set(pids) == {"classifier", "inpainter", "patchmatch", "explainer", "gateway"}
    base = f"http://127.0.0.1:{run_local.http_port}"
    assert requests.get(base + "/readyz", timeout=10).status_code == 200
    assert requests.get(base + "/", timeout=10).status_code == 200
    names = {b["name"] for b in requests.get(base + "/api/v1/info", timeout=10).json()["backends"]}
    assert {"telea", "patchmatch"} <= names
    wait_until(
        lambda: requests.get(base + "/api/v1/info", timeout=10).json()["explain"]["available"],
        what="the explainer",
    )

    run_local.proc.send_signal(signal.SIGINT)
    assert run_local.proc.wait(60) == 0
    run_local.wait_for(r"all stopped", timeout=5)
    assert all(gone(pid) for pid in pids.values())


def test_a_dead_classifier_is_reported_and_stops_the_rest(run_local):
    run_local.wait_for(r"ready: open")
    pids = run_local.child_pids()
    os.kill(pids["classifier"], signal.SIGKILL)
    run_local.wait_for(r"classifier exited with code -9: the system cannot work without it")
    assert run_local.proc.wait(60) == 1
    assert all(gone(pid) for pid in pids.values())
