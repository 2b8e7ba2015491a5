"""The system under Docker Compose, as a person runs it: the five images built
from their Dockerfiles, `up` with docker-compose.yml, every request through the
gateway's published port.

One Compose project for the whole module (building and starting is the slow
part); the tests run in order on it: basics, scale-out, faults, tear-down.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import GALLERY_TOP1
from tests.support.docker import (
    SERVICES,
    ComposeProject,
    build_images,
    image_name,
    image_size_mb,
    inspect,
    require_docker,
    run,
    wait_until,
)
from tests.support.processes import free_port

# Building the images (first test of the module) takes minutes on a cold cache.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]

OPENCV_ENGINES = {"telea", "navier-stokes", "blur", "mean"}
TIMEOUT = 60


@pytest.fixture(scope="module")
def images():
    require_docker()
    timings = build_images()
    for image, seconds in timings.items():
        print(f"built {image} in {seconds:.0f}s: {image_size_mb(image):.0f} MB")
    return timings


@pytest.fixture(scope="module")
def stack(images):
    project = ComposeProject(
        name=f"ictest{os.getpid()}",
        http_port=free_port(),
        env_overrides={
            # Shorter connection age and health interval: replicas found and
            # faults noticed sooner. (Not much shorter: every connection
            # recycle is a GOAWAY race a call can lose.)
            "IC_MAX_CONNECTION_AGE_S": "10",
            "IC_HEALTHCHECK_INTERVAL": "2s",
        },
    )
    try:
        project.compose("up", "-d", "--no-build", timeout=600)
        project.wait_healthy({service: 1 for service in SERVICES})
        project.wait_ready()
        yield project
    finally:
        project.down()


def png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def decode_b64_png(data: str) -> np.ndarray:
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


@pytest.fixture(scope="module")
def soccer(photo_rgb):
    rgb = photo_rgb("soccer")
    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[80:140, 90:150] = 255
    return rgb, mask


def classify(stack, image: bytes, **fields) -> requests.Response:
    return requests.post(
        f"{stack.url}/api/v1/classify",
        files={"image": ("photo.png", image, "image/png")},
        data=fields,
        timeout=TIMEOUT,
    )


def inpaint(stack, rgb, mask, backend: str, endpoint: str = "inpaint") -> requests.Response:
    return requests.post(
        f"{stack.url}/api/v1/{endpoint}",
        files={
            "image": ("photo.png", png(rgb), "image/png"),
            "mask": ("mask.png", png(mask), "image/png"),
        },
        data={"backend": backend},
        timeout=TIMEOUT,
    )


def test_images_run_as_non_root_and_report_their_size(images):
    for service in SERVICES:
        image = image_name(service)
        user = inspect(image)["Config"]["User"]
        assert user and user.split(":")[0] not in ("", "0", "root"), f"{image} runs as {user!r}"
        uid = run(["docker", "run", "--rm", "--entrypoint", "id", image, "-u"]).stdout.strip()
        assert uid != "0", f"{image} runs as root"
        print(f"{image}: {image_size_mb(image):.0f} MB, user {user}")


def test_only_the_gateway_publishes_a_port_and_roots_are_read_only(stack):
    for service in SERVICES:
        (container,) = stack.containers(service)
        details = inspect(container)
        published = {k: v for k, v in (details["NetworkSettings"]["Ports"] or {}).items() if v}
        if service == "gateway":
            assert list(published) == ["8080/tcp"]
            assert published["8080/tcp"][0]["HostPort"] == str(stack.http_port)
        else:
            assert not published, f"{service} publishes {published}"
        assert details["HostConfig"]["ReadonlyRootfs"] is True
        assert details["Name"].lstrip("/").startswith(stack.name)


def test_the_page_loads_from_the_gateway(stack):
    page = requests.get(f"{stack.url}/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert "text/html" in page.headers["Content-Type"]
    assert re.search(r"<html", page.text, re.IGNORECASE)
    gallery = requests.get(f"{stack.url}/api/v1/gallery", timeout=TIMEOUT).json()["images"]
    assert {photo["id"] for photo in gallery} >= set(GALLERY_TOP1)
    photo = requests.get(f"{stack.url}{gallery[0]['url']}", timeout=TIMEOUT)
    assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"


def test_classify_through_the_gateway(stack, photo_bytes):
    for name in ("soccer", "lighthouse"):
        reply = classify(stack, photo_bytes(name), top_k="3", cam="top")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["predictions"][0]["label"] == GALLERY_TOP1[name]
        assert len(body["cams"]) == 3
        assert body["served_by"]["classifier"]


def test_inpaint_with_every_backend_of_both_services(stack, soccer):
    rgb, mask = soccer
    info = requests.get(f"{stack.url}/api/v1/info", timeout=TIMEOUT).json()
    backends = {b["name"] for b in info["backends"] if b["available"]}
    assert backends >= OPENCV_ENGINES | {"patchmatch"}
    for backend in sorted(backends):
        reply = inpaint(stack, rgb, mask, backend)
        assert reply.status_code == 200, f"{backend}: {reply.text}"
        body = reply.json()
        assert (body["backend"], body["fallback"]) == (backend, False)
        result = decode_b64_png(body["image"])
        hole = mask > 0
        assert np.array_equal(result[~hole], rgb[~hole]), f"{backend} changed unmasked pixels"
        assert np.abs(result[hole].astype(int) - rgb[hole]).mean() > 5, f"{backend} left the hole"


def test_edit_inpaints_then_classifies(stack, soccer):
    rgb, mask = soccer
    reply = inpaint(stack, rgb, mask, "patchmatch", endpoint="edit")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["backend"] == "patchmatch" and not body["fallback"]
    assert len(body["predictions"]) == 5
    assert set(body["served_by"]) >= {"gateway", "inpainter", "classifier"}


def explain(stack, image: bytes, stream: bool = False, **fields) -> requests.Response:
    return requests.post(
        f"{stack.url}/api/v1/explain",
        files={"image": ("photo.jpg", image, "image/jpeg")},
        data=fields,
        headers={"Accept": "application/x-ndjson"} if stream else {},
        timeout=TIMEOUT,
    )


def test_explain_streams_a_preview_then_the_maps(stack, photo_bytes):
    reply = explain(stack, photo_bytes("soccer"), stream=True)
    assert reply.status_code == 200, reply.text
    lines = [json.loads(line) for line in reply.text.splitlines() if line]
    previews = [line for line in lines if line.get("final") is False]
    final = lines[-1]
    assert len(previews) == 1 and previews[0]["windows"] == 25
    assert final["final"] is True and final["windows"] == 169
    assert final["target"]["label"] == GALLERY_TOP1["soccer"]
    assert (final["backend"], final["fallback"]) == ("telea", False)
    assert final["served_by"]["explainer"]
    info = requests.get(f"{stack.url}/api/v1/info", timeout=TIMEOUT).json()
    assert info["explain"] == {"available": True, "reason": ""}


def served_by_spread(stack, rgb, mask, want: dict[str, int], timeout=120) -> dict[str, set]:
    """Send edits until `want` distinct replicas of each service answered."""
    seen: dict[str, set] = {service: set() for service in want}

    def enough() -> bool:
        reply = inpaint(stack, rgb, mask, "telea", endpoint="edit")
        assert reply.status_code == 200, reply.text
        for service in want:
            seen[service].add(reply.json()["served_by"][service])
        return all(len(seen[s]) >= n for s, n in want.items())

    wait_until(enough, timeout, f"replicas {want} to serve (seen {seen})", interval=0.05)
    return seen


def test_scaled_replicas_share_the_requests(stack, soccer):
    rgb, mask = soccer
    before = {s: stack.containers(s) for s in ("gateway", "patchmatch")}
    stack.compose(
        "up", "-d", "--no-build", "--no-recreate", "--scale", "classifier=3",
        "--scale", "inpainter=2", "--scale", "explainer=2", timeout=300,
    )  # fmt: skip
    stack.wait_healthy({"classifier": 3, "inpainter": 2, "explainer": 2})
    assert {s: stack.containers(s) for s in before} == before, "scaling touched other services"
    seen = served_by_spread(stack, rgb, mask, {"classifier": 2, "inpainter": 2})
    print(f"replicas that served: {seen}")
    for service in ("classifier", "inpainter"):
        served = {name.split(":")[0] for name in seen[service]}
        assert served <= hosts(stack.containers(service)), (service, served)
    explainers: set[str] = set()

    def two_explainers_served() -> bool:
        reply = explain(stack, png(rgb), window="113", stride="57")
        assert reply.status_code == 200, reply.text
        explainers.add(reply.json()["served_by"]["explainer"].split(":")[0])
        return len(explainers) >= 2

    wait_until(two_explainers_served, 120, "both explainer replicas to serve", interval=0.2)
    assert explainers <= hosts(stack.containers("explainer"))


def hosts(container_ids: list[str]) -> set[str]:
    """Container host names (the short ids) as served_by reports them."""
    return {container[:12] for container in container_ids}


def test_stopping_a_classifier_replica_mid_run_fails_no_request(stack, photo_bytes):
    image = photo_bytes("soccer")
    replicas = stack.containers("classifier")
    assert len(replicas) == 3
    failures: list[str] = []

    def one(_) -> str:
        reply = classify(stack, image)
        if reply.status_code != 200:
            failures.append(f"{reply.status_code} {reply.text}")
            return ""
        return reply.json()["served_by"]["classifier"].split(":")[0]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(16)))
        running = pool.map(one, range(48))
        run(["docker", "stop", "--time", "10", replicas[0]])
        list(running)
    assert failures == []
    remaining = stack.containers("classifier")
    assert len(remaining) == 2
    after = {one(i) for i in range(12)}
    assert failures == []
    assert after <= hosts(remaining), f"served by {after}, running {hosts(remaining)}"


def test_explainer_down_leaves_everything_else_working(stack, soccer, photo_bytes):
    rgb, mask = soccer
    others = {s: stack.containers(s) for s in ("gateway", "classifier", "inpainter")}
    stack.compose("stop", "explainer")
    reply = explain(stack, photo_bytes("soccer"))
    assert reply.status_code == 503, reply.text
    assert "explainer" in reply.json()["error"]["message"]
    assert requests.get(f"{stack.url}/readyz", timeout=TIMEOUT).status_code == 200
    assert inpaint(stack, rgb, mask, "telea", endpoint="edit").status_code == 200
    info = requests.get(f"{stack.url}/api/v1/info", timeout=TIMEOUT).json()
    assert info["explain"]["available"] is False and "explainer" in info["explain"]["reason"]

    stack.compose("start", "explainer")
    stack.wait_healthy({"explainer": 2})
    wait_until(
        lambda: explain(stack, photo_bytes("soccer"), window="113").status_code == 200,
        90, "explain to work again", interval=1,
    )  # fmt: skip
    assert {s: stack.containers(s) for s in others} == others


def test_patchmatch_down_falls_back_then_serves_again(stack, soccer):
    rgb, mask = soccer
    others = {s: stack.containers(s) for s in ("gateway", "inpainter")}
    stack.compose("stop", "patchmatch")

    reply = inpaint(stack, rgb, mask, "patchmatch")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["fallback"] is True
    assert body["backend"] in OPENCV_ENGINES
    assert requests.get(f"{stack.url}/readyz", timeout=TIMEOUT).status_code == 200

    stack.compose("start", "patchmatch")
    stack.wait_healthy({"patchmatch": 1})

    def patchmatch_used() -> bool:
        answer = inpaint(stack, rgb, mask, "patchmatch").json()
        return answer["backend"] == "patchmatch" and not answer["fallback"]

    wait_until(patchmatch_used, 90, "patchmatch to serve again", interval=1)
    assert {s: stack.containers(s) for s in others} == others


def test_replacing_patchmatch_leaves_the_rest_serving(stack, soccer):
    """Swap the backend on its own (`up -d --no-deps --force-recreate`) while
    requests for it keep coming: none fails, the others are not touched."""
    rgb, mask = soccer
    others = {s: stack.containers(s) for s in ("gateway", "classifier", "inpainter")}
    old = stack.containers("patchmatch")
    answers: list[tuple[int, str, bool]] = []
    swapped = threading.Event()

    def keep_asking() -> None:
        while not swapped.is_set() and len(answers) < 2000:
            reply = inpaint(stack, rgb, mask, "patchmatch")
            body = reply.json()
            answers.append((reply.status_code, body.get("backend"), body.get("fallback")))

    with ThreadPoolExecutor(1) as pool:
        asking = pool.submit(keep_asking)
        try:
            stack.compose("up", "-d", "--no-build", "--no-deps", "--force-recreate", "patchmatch")
            stack.wait_healthy({"patchmatch": 1})
            wait_until(
                lambda: answers and answers[-1][1:] == ("patchmatch", False),
                90, "the new patchmatch to serve", interval=0.5,
            )  # fmt: skip
        finally:
            swapped.set()
            asking.result()
    assert stack.containers("patchmatch") != old
    assert {s: stack.containers(s) for s in others} == others
    assert all(status == 200 for status, _, _ in answers), answers
    print(f"during the swap: {sum(bool(f) for _, _, f in answers)} of {len(answers)} fell back")


def test_adding_an_inpainting_service_takes_an_entry_and_an_address(stack, soccer):
    """deploy/compose/resynthesizer.yml: the Resynthesizer engine moves to a
    service of its own; the gateway learns it from the new address alone."""
    rgb, mask = soccer
    files = ("-f", "docker-compose.yml", "-f", "deploy/compose/resynthesizer.yml")
    stack.compose(*files, "up", "-d", "--no-build", timeout=600)
    stack.wait_healthy({"resynthesizer": 1, "patchmatch": 1, "gateway": 1})
    stack.wait_ready()
    where = {s: hosts(stack.containers(s)) for s in ("resynthesizer", "patchmatch")}

    def served_where_expected() -> bool:
        for backend, service in (("resynthesizer", "resynthesizer"), ("patchmatch", "patchmatch")):
            body = inpaint(stack, rgb, mask, backend).json()
            host = body["served_by"]["inpainter"].split(":")[0]
            if (body["backend"], body["fallback"], host in where[service]) != (
                backend,
                False,
                True,
            ):
                return False
        return True

    wait_until(served_where_expected, 90, "each engine served by its own service", interval=1)


def test_down_leaves_nothing_behind(stack):
    assert any(stack.leftovers().values())
    stack.down()
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
