"""Docker helpers of the container tests: find the engine and Compose, build
the five images once per session (on the local base image, built here if
missing), run a Compose project and read its containers' state.

Everything goes through the `docker` CLI (and `docker compose` or
`docker-compose`), exactly as a person would run it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from tests.support.processes import REPO
from tests.support.tools import require

INSTALL_HINT = "install Docker Engine + Compose (docker compose v2 or docker-compose v1.29)"
SERVICES = ("classifier", "inpainter", "patchmatch", "explainer", "gateway")
BASE_IMAGE = os.environ.get("IC_TEST_BASE_IMAGE", "ic-base:bookworm")
IMAGE_TAG = os.environ.get("IC_TEST_IMAGE_TAG", "test")
IMAGE_PREFIX = "ic-"
BUILD_TIMEOUT_S = 1800


def run(args: list[str], timeout: float = 300, check: bool = True, env=None, **kwargs):
    """Run a command, capture its output, fail with that output on error."""
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=kwargs.pop("cwd", REPO),
        **kwargs,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@functools.cache
def docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    return run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False).returncode == 0


@functools.cache
def compose_command() -> tuple[str, ...] | None:
    """`docker compose` (v2) if installed, else `docker-compose` (v1.29), else None."""
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def require_docker(compose: bool = True) -> None:
    """Skip locally (fail under CI=true) unless the engine and Compose are usable."""
    require(shutil.which("docker") is not None, "docker", INSTALL_HINT)
    require(docker_ready(), "the Docker Engine (docker info failed)", INSTALL_HINT)
    if compose:
        require(compose_command() is not None, "Docker Compose", INSTALL_HINT)


def image_name(service: str, tag: str = IMAGE_TAG) -> str:
    return f"{IMAGE_PREFIX}{service}:{tag}"


def image_exists(image: str) -> bool:
    return run(["docker", "image", "inspect", image], check=False).returncode == 0


def ensure_base_image() -> str:
    """The local base image (no registry here): built with debootstrap if missing."""
    if not image_exists(BASE_IMAGE):
        run(
            ["tools/docker/build_base_image.sh"],
            env={**os.environ, "IC_BASE_IMAGE": BASE_IMAGE},
            timeout=BUILD_TIMEOUT_S,
        )
    return BASE_IMAGE


def stage_build_inputs() -> None:
    """Put the models and the gallery where the image builds find them (models/,
    gallery/ in the build context), so nothing is downloaded or converted in
    the build when a local copy exists: the fetch step writes each built-in
    card's ONNX file into models/."""
    run([sys.executable, "-m", "services.classifier.fetch_model"])
    run([sys.executable, "-m", "tools.fetch_gallery"])


def compose_env(**overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "IC_BASE_IMAGE": BASE_IMAGE,
        "IC_IMAGE_PREFIX": IMAGE_PREFIX,
        "IC_IMAGE_TAG": IMAGE_TAG,
        **overrides,
    }


@functools.cache
def build_images() -> dict[str, float]:
    """Build the five images with Compose, once per session -> {image: seconds}."""
    ensure_base_image()
    stage_build_inputs()
    timings = {}
    for service in SERVICES:
        started = time.monotonic()
        run(
            [*compose_command(), "build", service],
            env=compose_env(),
            timeout=BUILD_TIMEOUT_S,
        )
        timings[image_name(service)] = time.monotonic() - started
    return timings


def image_size_mb(image: str) -> float:
    size = run(["docker", "image", "inspect", "--format", "{{.Size}}", image]).stdout
    return int(size.strip()) / 1e6


def inspect(container: str) -> dict:
    return json.loads(run(["docker", "inspect", container]).stdout)[0]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval=0.5):
    """Poll until predicate() is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class ComposeProject:
    """One Compose project (-p name) of docker-compose.yml with its own port."""

    name: str
    http_port: int
    env_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return compose_env(
            IC_HTTP_PORT=str(self.http_port), IC_HTTP_BIND="127.0.0.1", **self.env_overrides
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def compose(self, *args: str, timeout: float = 300, check: bool = True):
        return run(
            [*compose_command(), "-p", self.name, *args], env=self.env, timeout=timeout, check=check
        )

    def label_filter(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return filters

    def containers(self, service: str | None = None, running_only: bool = True) -> list[str]:
        args = ["docker", "ps", "-q", "--no-trunc", *self.label_filter(service)]
        if not running_only:
            args.insert(2, "-a")
        return run(args).stdout.split()

    def health(self, container: str) -> str:
        state = inspect(container)["State"]
        return (state.get("Health") or {}).get("Status", state["Status"])

    def healthy_count(self, service: str) -> int:
        return sum(self.health(c) == "healthy" for c in self.containers(service))

    def wait_healthy(self, counts: dict[str, int], timeout: float = 180) -> None:
        def all_healthy() -> bool:
            return all(self.healthy_count(s) >= n for s, n in counts.items())

        try:
            wait_until(all_healthy, timeout, f"healthy containers {counts}", interval=1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.logs()}") from None

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            try:
                return requests.get(f"{self.url}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(ready, timeout, f"{self.url}/readyz", interval=1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.logs()}") from None

    def logs(self, tail: int = 30) -> str:
        result = self.compose("logs", "--no-color", "--tail", str(tail), check=False)
        return result.stdout[-8000:]

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes that still carry the project label."""
        return {
            kind: run(["docker", *command, "-q", *self.label_filter()]).stdout.split()
            for kind, command in {
                "containers": ["ps", "-a"],
                "networks": ["network", "ls"],
                "volumes": ["volume", "ls"],
            }.items()
        }

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
