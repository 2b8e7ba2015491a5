"""`make run`: the whole system as local processes, no Docker.

Starts the classifier, the OpenCV inpainter, the PatchMatch service, the
explainer and the gateway (`python -m ...` each, with the conventional ports),
waits until the
gateway's /readyz is green, prints the URL, and on Ctrl-C (or SIGTERM) stops
them all: SIGTERM to each child, gateway first, then a wait (SIGKILL after
the grace period). A child that dies is reported; if it is one the system
cannot work without (classifier, inpainter, gateway), the rest are stopped
too. PatchMatch is optional: the gateway falls back to the OpenCV engines
(and reports patchmatch unavailable) when it is missing or its library is not
built. So is the explainer: without it only /api/v1/explain is unavailable.

The children inherit the environment (IC_MODEL_PATH, IC_LOG_LEVEL, ...); their
JSON logs go to this terminal.
"""

from __future__ import annotations

import argparse
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


def say(message: str) -> None:
    print(f"run_local: {message}", flush=True)


@dataclass
class Child:
    name: str
    module: str
    env: dict[str, str]
    essential: bool = True
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            # Own process group: Ctrl-C reaches run_local only, which then stops
            # the children in order instead of all at once.
            start_new_session=True,
        )
        say(f"started {self.name} (pid {self.proc.pid})")

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
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


def build_children(args: argparse.Namespace) -> list[Child]:
    def grpc_env(port: int, metrics_port: int) -> dict[str, str]:
        return {
            "IC_GRPC_PORT": str(port),
            "IC_METRICS_PORT": str(metrics_port if args.metrics else 0),
        }

    backends = [f"dns:///localhost:{args.inpainter_port}"]
    if not args.no_patchmatch:
        backends.append(f"dns:///localhost:{args.patchmatch_port}")
    children = [
        Child("classifier", "services.classifier", grpc_env(args.classifier_port, 9101)),
        Child("inpainter", "services.inpainter", grpc_env(args.inpainter_port, 9102)),
    ]
    if not args.no_patchmatch:
        children.append(
            Child(
                "patchmatch",
                "services.patchmatch",
                grpc_env(args.patchmatch_port, 9103),
                essential=False,
            )
        )
    classifier = f"dns:///localhost:{args.classifier_port}"
    children.append(
        Child(
            "explainer",
            "services.explainer",
            {
                **grpc_env(args.explainer_port, 9104),
                "IC_CLASSIFIER_ADDR": classifier,
                "IC_INPAINT_BACKENDS": ",".join(backends),
            },
            essential=False,
        )
    )
    children.append(
        Child(
            "gateway",
            "gateway",
            {
                "IC_HTTP_HOST": args.http_host,
                "IC_HTTP_PORT": str(args.http_port),
                "IC_CLASSIFIER_ADDR": classifier,
                "IC_INPAINT_BACKENDS": ",".join(backends),
                "IC_EXPLAINER_ADDR": f"dns:///localhost:{args.explainer_port}",
                "IC_SEGMENTER_ADDR": f"dns:///localhost:{args.inpainter_port}",
            },
        )
    )
    return children


def gateway_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Supervisor:
    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = False
        self.reported: set[str] = set()

    def on_signal(self, signum, _frame) -> None:
        if not self.stopping:
            say(f"{signal.Signals(signum).name}: stopping everything")
        self.stopping = True

    def dead_essential_child(self) -> Child | None:
        """Report every child that died; return one the system cannot do without."""
        fatal = None
        for child in self.children:
            code = child.exit_code()
            if code is None or child.name in self.reported:
                continue
            self.reported.add(child.name)
            if child.essential:
                say(f"{child.name} exited with code {code}: the system cannot work without it")
                fatal = fatal or child
            else:
                say(f"{child.name} exited with code {code}; going on without it (fallback)")
        return fatal

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
            while not self.stopping:
                if self.dead_essential_child():
                    return 1
                if not ready:
                    if gateway_ready(ready_url):
                        ready = True
                        say(f"ready: open {page_url}  (Ctrl-C stops everything)")
                    elif time.monotonic() - started > READY_TIMEOUT_S:
                        say(f"not ready after {READY_TIMEOUT_S:.0f}s ({ready_url}): giving up")
                        return 1
                time.sleep(0.25)
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    supervisor = Supervisor(build_children(args))
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
