"""`make run`: the whole system as local processes, no Docker.

Starts the services of `build_services` (classifier, OpenCV inpainter,
PatchMatch, explainer, gateway: `python -m ...` each, on the conventional ports), waits
until the gateway's /readyz is green, prints the URL, and on Ctrl-C (or
SIGTERM) stops them all: SIGTERM to each child, gateway first, then a wait
(SIGKILL after the grace period).

A child that dies is reported and started again after a delay that doubles
from 1 s up to 30 s while it keeps dying, back to 1 s once it has stayed up
for a minute (`RestartPolicy`). One that dies within 10 s of starting five
times in a row cannot start: if the system cannot work without it
(classifier, inpainter, gateway) everything is stopped; PatchMatch is
optional, so it is left down and the gateway falls back to the OpenCV
engines (and reports patchmatch unavailable), as it does while any restart
is pending. So is the explainer: without it only /api/v1/explain is unavailable.

The children inherit the environment (IC_MODEL_PATH, IC_LOG_LEVEL, ...); their
JSON logs go to this terminal.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from common.config import env_int, env_str

READY_TIMEOUT_S = 180.0
STOP_GRACE_S = 15.0
TICK_S = 0.25


def say(message: str) -> None:
    print(f"run_local: {message}", flush=True)


@dataclass(frozen=True)
class Service:
    """One entry of the table of children: what to run and whether the system
    can work without it."""

    name: str
    module: str
    env: dict[str, str]
    essential: bool = True


@dataclass
class RestartPolicy:
    """When to start a dead child again, and when to stop trying.

    The delay doubles from `first_delay_s` up to `max_delay_s` with every death,
    and is back to `first_delay_s` after a run of at least `stable_s`. A death
    within `failed_start_s` of the start is a failed start; `give_up_after`
    failed starts in a row mean the child cannot start.
    """

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_s: float = 60.0
    failed_start_s: float = 10.0
    give_up_after: int = 5
    next_delay_s: float = field(init=False)
    failed_starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.next_delay_s = self.first_delay_s

    def after_exit(self, uptime_s: float) -> float | None:
        """The delay before the next start after a run of `uptime_s`; None to give up."""
        if uptime_s >= self.stable_s:
            self.next_delay_s = self.first_delay_s
        if uptime_s < self.failed_start_s:
            self.failed_starts += 1
            if self.failed_starts >= self.give_up_after:
                return None
        else:
            self.failed_starts = 0
        delay = self.next_delay_s
        self.next_delay_s = min(delay * 2, max(self.max_delay_s, self.first_delay_s))
        return delay


PR_SET_PDEATHSIG = 1  # prctl(2)


def _libc_prctl():
    """glibc's prctl, looked up before any fork (None elsewhere than Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def _stop_with(parent: int):
    """For Popen's preexec_fn: the child gets SIGTERM when run_local dies, however
    it dies. The children run in their own session (Ctrl-C must not reach them
    directly), so without this a run_local killed with SIGKILL, or by the OOM
    killer, would leave every service running and holding its port for the next
    `make run`."""

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # run_local died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def ort_threads() -> str:
    """ONNX Runtime threads of the one local classifier: the cores it may use (at
    most 4), unless IC_ORT_THREADS says. The service's default, 1, suits many
    replicas; `make run` has one replica for one person, whose explanation then
    takes 0.85 s instead of 1.15 s on 2 cores (bench_explain.py)."""
    return os.environ.get("IC_ORT_THREADS") or str(min(4, len(os.sched_getaffinity(0))))


class Child:
    """A service's process over its lifetime: started, restarted, stopped."""

    def __init__(self, service: Service, policy: RestartPolicy) -> None:
        self.service = service
        self.name = service.name
        self.policy = policy
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.restart_at: float | None = None  # a pending restart
        self.given_up = False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.service.module],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.service.env},
            # Own process group: Ctrl-C reaches run_local only, which then stops
            # the children in order instead of all at once.
            start_new_session=True,
            preexec_fn=_stop_with(os.getpid()),
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        say(f"started {self.name} (pid {self.proc.pid})")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if not self.proc:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {timeout:.0f}s: killing it")
            self.proc.kill()
            self.proc.wait()


def build_services(args: argparse.Namespace) -> list[Service]:
    """The table of children, in start order (they are stopped in reverse)."""

    def grpc_env(port: int, metrics_port: int) -> dict[str, str]:
        return {
            "IC_GRPC_PORT": str(port),
            "IC_METRICS_PORT": str(metrics_port if args.metrics else 0),
        }

    backends = [f"dns:///localhost:{args.inpainter_port}"]
    if not args.no_patchmatch:
        backends.append(f"dns:///localhost:{args.patchmatch_port}")
    gateway_env = {
        "IC_HTTP_HOST": args.http_host,
        "IC_HTTP_PORT": str(args.http_port),
        "IC_CLASSIFIER_ADDR": f"dns:///localhost:{args.classifier_port}",
        "IC_INPAINT_BACKENDS": ",".join(backends),
        "IC_SEGMENTER_ADDR": f"dns:///localhost:{args.inpainter_port}",
        "IC_EXPLAINER_ADDR": f"dns:///localhost:{args.explainer_port}",
    }
    table = [
        Service(
            "classifier",
            "services.classifier",
            {**grpc_env(args.classifier_port, 9101), "IC_ORT_THREADS": ort_threads()},
        ),
        Service("inpainter", "services.inpainter", grpc_env(args.inpainter_port, 9102)),
        Service(
            "patchmatch",
            "services.patchmatch",
            grpc_env(args.patchmatch_port, 9103),
            essential=False,
        ),
        Service(
            "explainer",
            "services.explainer",
            {
                **grpc_env(args.explainer_port, 9104),
                "IC_CLASSIFIER_ADDR": gateway_env["IC_CLASSIFIER_ADDR"],
                "IC_INPAINT_BACKENDS": ",".join(backends),
            },
            essential=False,
        ),
        Service("gateway", "gateway", gateway_env),
    ]
    left_out = {"patchmatch"} if args.no_patchmatch else set()
    return [service for service in table if service.name not in left_out]


def gateway_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Supervisor:
    def __init__(self, services: list[Service], first_delay_s: float = 1.0) -> None:
        self.children = [
            Child(service, RestartPolicy(first_delay_s=first_delay_s)) for service in services
        ]
        self.stopping = False

    def on_signal(self, signum, _frame) -> None:
        if not self.stopping:
            say(f"{signal.Signals(signum).name}: stopping everything")
        self.stopping = True

    def look_after(self, child: Child, now: float) -> bool:
        """Notice a death, schedule or make a restart; False if the system must stop."""
        if child.given_up:
            return True
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
            return True
        if child.proc is None or child.proc.poll() is None:
            return True
        code = child.proc.returncode
        delay = child.policy.after_exit(now - child.started_at)
        if delay is not None:
            child.restarts += 1
            child.restart_at = now + delay
            say(
                f"{child.name} exited with code {code}; "
                f"restarting in {delay:.1f} s (restart {child.restarts})"
            )
            return True
        child.given_up = True
        failed = (
            f"{child.name} exited with code {code}, {child.policy.give_up_after} times in a row "
            f"within {child.policy.failed_start_s:.0f} s of starting"
        )
        if child.service.essential:
            say(f"{failed}: giving up; the system cannot work without it")
            return False
        say(f"{failed}: giving up on it; going on without it (fallback)")
        return True

    def stop_all(self) -> None:
        # The gateway first, so no request meets a half-stopped backend.
        for child in reversed(self.children):
            child.terminate()
            child.wait(STOP_GRACE_S)
        say("all stopped")

    def run(self, ready_url: str, page_url: str) -> int:
        for child in self.children:
            child.start()
        started = time.monotonic()
        ready = False
        try:
            # Polling, never a blocking wait: a signal during a restart delay
            # is seen within one tick.
            while not self.stopping:
                now = time.monotonic()
                if not all(self.look_after(child, now) for child in self.children):
                    return 1
                if not ready:
                    if gateway_ready(ready_url):
                        ready = True
                        say(f"ready: open {page_url}  (Ctrl-C stops everything)")
                    elif time.monotonic() - started > READY_TIMEOUT_S:
                        say(f"not ready after {READY_TIMEOUT_S:.0f}s ({ready_url}): giving up")
                        return 1
                time.sleep(TICK_S)
            return 0
        finally:
            self.stop_all()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the whole system locally.")
    parser.add_argument("--http-host", default=env_str("IC_HTTP_HOST", "127.0.0.1"))
    parser.add_argument("--http-port", type=int, default=env_int("IC_HTTP_PORT", 8080))
    parser.add_argument("--classifier-port", type=int, default=50051)
    parser.add_argument("--inpainter-port", type=int, default=50052)
    parser.add_argument("--patchmatch-port", type=int, default=50053)
    parser.add_argument("--explainer-port", type=int, default=50054)
    parser.add_argument("--no-patchmatch", action="store_true", help="OpenCV engines only")
    parser.add_argument(
        "--no-metrics", dest="metrics", action="store_false", help="no /metrics ports 9101-9104"
    )
    parser.add_argument(
        "--restart-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="first delay before a dead service is started again (doubles up to 30 s)",
    )
    args = parser.parse_args(argv)
    if not args.restart_delay > 0:
        parser.error("--restart-delay must be a positive number of seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    supervisor = Supervisor(build_services(args), first_delay_s=args.restart_delay)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    host = "localhost" if args.http_host in ("0.0.0.0", "127.0.0.1", "::") else args.http_host
    base = (
        f"http://127.0.0.1:{args.http_port}"
        if host == "localhost"
        else f"http://{host}:{args.http_port}"
    )
    return supervisor.run(f"{base}/readyz", f"http://{host}:{args.http_port}/")


if __name__ == "__main__":
    sys.exit(main())
