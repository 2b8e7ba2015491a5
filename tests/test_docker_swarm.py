"""The same system as a Docker Swarm stack (deploy/swarm/stack.yml) on this
machine: a one-node swarm, the stack deployed from the locally built images,
requests served through the routing mesh, a backend scaled; then the stack and
the swarm removed, whatever happened.

If the engine is already part of a swarm this test did not create, it deploys
into it and removes only its own stack.
"""

from __future__ import annotations

import os

import pytest
import requests

from tests.conftest import GALLERY_TOP1
from tests.support.docker import (
    IMAGE_PREFIX,
    IMAGE_TAG,
    build_images,
    require_docker,
    run,
    wait_until,
)
from tests.support.processes import REPO, free_port

# Building the images (first test of the module) takes minutes on a cold cache.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

STACK_FILE = REPO / "deploy" / "swarm" / "stack.yml"
TIMEOUT = 60


def swarm_state() -> str:
    return run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.strip()


def replicas(service: str) -> tuple[int, int]:
    """(running, desired) tasks of a Swarm service, from `docker service ls`."""
    text = run(["docker", "service", "ls", "--filter", f"name={service}", "--format",
                "{{.Name}} {{.Replicas}}"]).stdout  # fmt: skip
    for line in text.splitlines():
        name, counts = line.split()[:2]
        if name == service:
            running, desired = counts.split("/")
            return int(running), int(desired)
    return 0, -1


@pytest.fixture(scope="module")
def swarm_stack():
    require_docker(compose=False)
    build_images()
    created_swarm = False
    had_gwbridge = bool(
        run(["docker", "network", "ls", "-q", "--filter", "name=^docker_gwbridge$"]).stdout.strip()
    )
    if swarm_state() != "active":
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
        created_swarm = True
    name = f"icswarm{os.getpid()}"
    port = free_port()
    env = {
        **os.environ,
        "IC_IMAGE_PREFIX": IMAGE_PREFIX,
        "IC_IMAGE_TAG": IMAGE_TAG,
        "IC_HTTP_PORT": str(port),
        "IC_MAX_CONNECTION_AGE_S": "10",
        "IC_HEALTHCHECK_INTERVAL": "2s",
        # The routing mesh needs IPVS, which a CI VM may lack; a host-mode
        # port works everywhere (one gateway task per node).
        "IC_PUBLISH_MODE": os.environ.get("IC_TEST_SWARM_PUBLISH_MODE", "host"),
        # One task each to start with: this machine has two cores.
        "IC_CLASSIFIER_REPLICAS": "1",
        "IC_INPAINTER_REPLICAS": "1",
        "IC_EXPLAINER_REPLICAS": "1",
        "IC_GATEWAY_REPLICAS": "1",
        # The stack limits each client as a person at the page would need
        # (test_docker_config checks it); this test polls ten times a second.
        "IC_RATE_LIMIT_PER_MIN": "100000",
    }
    try:
        run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(STACK_FILE), name],
            env=env,
        )
        yield name, f"http://127.0.0.1:{port}"
    finally:
        run(["docker", "stack", "rm", name], check=False)
        # The stack's network goes once its tasks are gone; wait so the swarm
        # (or the next test) starts clean.
        wait_until(
            lambda: not run(["docker", "network", "ls", "-q", "--filter",
                             f"label=com.docker.stack.namespace={name}"]).stdout.strip()
            and not run(["docker", "ps", "-aq", "--filter",
                         f"label=com.docker.stack.namespace={name}"]).stdout.strip(),
            120, "the stack's containers and network to go",
        )  # fmt: skip
        if created_swarm:
            run(["docker", "swarm", "leave", "--force"], check=False)
            if not had_gwbridge:  # made by `swarm init` for host-mode ports
                run(["docker", "network", "rm", "docker_gwbridge"], check=False)


def ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def classify(url: str, photo: bytes) -> requests.Response | None:
    """POST /classify; None for the plain 503 of a backend the gateway cannot
    reach for the moment (in a dnsrr stack a task leaves DNS while its health
    check fails, e.g. on a loaded machine); any other failure fails the test."""
    answer = requests.post(
        f"{url}/api/v1/classify",
        files={"image": ("soccer.jpg", photo, "image/jpeg")},
        timeout=TIMEOUT,
    )
    if answer.status_code == 503:
        assert answer.json()["error"]["code"] == "unavailable", answer.text
        print(f"swarm: transient 503: {answer.json()['error']['message']}")
        return None
    assert answer.status_code == 200, answer.text
    return answer


def test_stack_serves_and_scales(swarm_stack, photo_bytes):
    name, url = swarm_stack
    for service in ("classifier", "inpainter", "patchmatch", "explainer", "gateway"):
        wait_until(
            lambda s=service: replicas(f"{name}_{s}")[0] >= 1, 240, f"{service} task running"
        )
    wait_until(lambda: ready(url), 240, f"{url}/readyz")

    page = requests.get(f"{url}/", timeout=TIMEOUT)
    assert page.status_code == 200 and "<html" in page.text.lower()
    reply = wait_until(lambda: classify(url, photo_bytes("soccer")), 60, "a classification")
    assert reply.json()["predictions"][0]["label"] == GALLERY_TOP1["soccer"]

    run(["docker", "service", "scale", "--detach", f"{name}_classifier=2"])
    wait_until(lambda: replicas(f"{name}_classifier") == (2, 2), 240, "2 classifier tasks")
    seen: set[str] = set()

    def two_replicas_served() -> bool:
        answer = classify(url, photo_bytes("soccer"))
        if answer is not None:
            seen.add(answer.json()["served_by"]["classifier"])
        return len(seen) >= 2

    wait_until(two_replicas_served, 120, "both classifier tasks to serve", interval=0.1)
    print(f"swarm classifier tasks that served: {sorted(seen)}")

    def explained() -> dict | None:
        answer = requests.post(
            f"{url}/api/v1/explain",
            files={"image": ("soccer.jpg", photo_bytes("soccer"), "image/jpeg")},
            data={"window": "113", "stride": "57"},
            timeout=TIMEOUT,
        )
        if answer.status_code == 503:  # the explainer task not in DNS (yet)
            print(f"swarm: transient 503: {answer.json()['error']['message']}")
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    body = wait_until(explained, 120, "an explanation")
    assert body["windows"] == 9 and body["served_by"]["explainer"]
