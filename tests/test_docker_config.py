"""The deployment files, checked without running them: docker-compose.yml and
.env.example, the Swarm stack, and the Kubernetes manifests against the
Kubernetes JSON schemas (shipped offline by the kubernetes-validate package)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.support.docker import compose_command, run
from tests.support.processes import REPO
from tests.support.tools import require

COMPOSE_FILE = REPO / "docker-compose.yml"
STACK_FILE = REPO / "deploy" / "swarm" / "stack.yml"
K8S_DIR = REPO / "deploy" / "kubernetes"
GRPC_SERVICES = {"classifier": 50051, "inpainter": 50052, "patchmatch": 50053, "explainer": 50054}
HEALTH_NAMES = {"classifier": "ic.v1.Classifier", "inpainter": "ic.v1.Inpainter"}
HEALTH_NAMES["patchmatch"] = "ic.v1.Inpainter"
HEALTH_NAMES["explainer"] = "ic.v1.Explainer"
INPAINTING = ("inpainter", "patchmatch")
# gRPC probes are GA from 1.27; check the oldest supported and the newest schema.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
VARIABLE = re.compile(r"\$\{(IC_[A-Z0-9_]+)(:-([^}]*))?\}")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def variables(text: str) -> dict[str, str | None]:
    return {name: default for name, _, default in VARIABLE.findall(text)}


def test_every_compose_setting_has_a_default_listed_in_env_example():
    text = COMPOSE_FILE.read_text()
    found = VARIABLE.findall(text)
    assert found, "no ${VAR:-default} in docker-compose.yml"
    missing = sorted({name for name, has_default, _ in found if not has_default})
    assert missing == [], f"variables without a default: {missing}"
    example = (REPO / ".env.example").read_text()
    listed = dict(re.findall(r"^#?(IC_[A-Z0-9_]+)=(.*)$", example, re.MULTILINE))
    assert listed == {name: default for name, _, default in found}


def test_compose_file_shape():
    services = load(COMPOSE_FILE)["services"]
    assert set(services) == {"classifier", "inpainter", "patchmatch", "explainer", "gateway"}
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: container_name prevents --scale"
        assert service["read_only"] is True and "/tmp" in service["tmpfs"][0]
        assert service["restart"].startswith("${IC_RESTART:-")
        assert service["healthcheck"]["test"][0] == "CMD"
        assert {"cpus", "mem_limit"} <= set(service)
        assert service["build"]["args"]["BASE_IMAGE"].startswith("${IC_BASE_IMAGE:-python:3.11")
        if name == "gateway":
            assert service["ports"] == ["${IC_HTTP_BIND:-0.0.0.0}:${IC_HTTP_PORT:-8080}:8080"]
            assert all(
                dep["condition"] == "service_healthy" for dep in service["depends_on"].values()
            )
        else:
            assert "ports" not in service, f"{name} publishes a port"
            assert service["healthcheck"]["test"][-1] == HEALTH_NAMES[name]


def test_dockerfiles_are_multi_stage_non_root_and_take_the_base_image():
    for dockerfile in [
        *(REPO / "services" / name / "Dockerfile" for name in GRPC_SERVICES),
        REPO / "gateway" / "Dockerfile",
    ]:
        text = dockerfile.read_text()
        assert text.count("FROM ${BASE_IMAGE}") >= 2, f"{dockerfile}: not multi-stage"
        assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
        assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
        assert re.search(r'^ENTRYPOINT \["python", "-m", ', text, re.MULTILINE)
        assert "HEALTHCHECK" in text
        assert not re.search(r"^(COPY|ADD) \. ", text, re.MULTILINE), "copy explicit paths"


def test_compose_validates_with_the_installed_compose():
    command = compose_command()
    require(command is not None, "Docker Compose", "install docker compose v2 or docker-compose")
    result = run([*command, "-f", str(COMPOSE_FILE), "config", "-q"], timeout=60)
    assert result.returncode == 0


def test_swarm_stack_has_no_compose_only_keys_and_uses_dnsrr_for_grpc():
    stack = load(STACK_FILE)
    compose = load(COMPOSE_FILE)["services"]
    assert set(stack["services"]) == set(compose)
    for name, service in stack["services"].items():
        assert "build" not in service and "depends_on" not in service
        assert "container_name" not in service
        assert service["image"] == compose[name]["image"]
        deploy = service["deploy"]
        assert deploy["update_config"]["order"] == "start-first"
        assert deploy["update_config"]["failure_action"] == "rollback"
        assert "limits" in deploy["resources"]
        assert service["read_only"] is True
        if name in GRPC_SERVICES:
            assert deploy["endpoint_mode"] == "dnsrr"
            assert "ports" not in service
        else:
            assert [p["target"] for p in service["ports"]] == [8080]
    assert all(default is not None for default in variables(STACK_FILE.read_text()).values())


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate_against_the_schemas(version):
    documents = k8s_documents()
    assert len(documents) >= 14
    for file_name, document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{file_name} {document['kind']}/{document['metadata']['name']}: {exc}")


def test_kustomization_lists_every_manifest():
    listed = load(K8S_DIR / "kustomization.yaml")["resources"]
    on_disk = sorted(p.name for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


def test_kubernetes_backends_have_headless_services_grpc_probes_hpa_and_pdb():
    deployments, services = by_kind("Deployment"), by_kind("Service")
    hpas, pdbs = by_kind("HorizontalPodAutoscaler"), by_kind("PodDisruptionBudget")
    for name, port in GRPC_SERVICES.items():
        deployment = deployments[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"ic-{name}:latest"
        assert {p["containerPort"] for p in container["ports"]} >= {port}
        for probe in ("startupProbe", "readinessProbe"):
            assert container[probe]["grpc"] == {"port": port, "service": HEALTH_NAMES[name]}
        assert container["livenessProbe"]["grpc"]["port"] == port
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0

        service = services[name]
        assert service["spec"]["clusterIP"] == "None", f"{name}: not headless"
        assert service["spec"]["selector"].items() <= labels.items()
        assert port in {p["port"] for p in service["spec"]["ports"]}

        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_kubernetes_gateway_points_at_the_backend_services():
    deployment = by_kind("Deployment")["gateway"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    addresses = [
        env["IC_CLASSIFIER_ADDR"],
        *env["IC_INPAINT_BACKENDS"].split(","),
        env["IC_EXPLAINER_ADDR"],
    ]
    assert [a.removeprefix("dns:///") for a in addresses] == [
        f"{name}:{port}" for name, port in GRPC_SERVICES.items()
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    gateway_service = by_kind("Service")["gateway"]
    assert gateway_service["spec"].get("clusterIP") != "None"


def test_public_demo_deployments_limit_each_client_but_local_compose_stays_open():
    stack_env = load(STACK_FILE)["services"]["gateway"]["environment"]
    assert variables(stack_env["IC_RATE_LIMIT_PER_MIN"]) == {"IC_RATE_LIMIT_PER_MIN": "120"}
    assert variables(stack_env["IC_RATE_LIMIT_BURST"]) == {"IC_RATE_LIMIT_BURST": "60"}
    assert variables(stack_env["IC_PROXY_HOPS"]) == {"IC_PROXY_HOPS": "1"}
    deployment = by_kind("Deployment")["gateway"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert (env["IC_RATE_LIMIT_PER_MIN"], env["IC_RATE_LIMIT_BURST"]) == ("120", "60")
    assert env["IC_PROXY_HOPS"] == "1"
    compose_env = load(COMPOSE_FILE)["services"]["gateway"]["environment"]
    assert variables(compose_env["IC_RATE_LIMIT_PER_MIN"]) == {"IC_RATE_LIMIT_PER_MIN": "0"}


def explainer_env(environment) -> dict[str, str]:
    """name -> value (with ${VAR:-default} read as its default) of an environment
    given as a Compose mapping or a Kubernetes env list."""
    if isinstance(environment, list):
        environment = {item["name"]: item.get("value") for item in environment}
    values = {}
    for name, value in environment.items():
        match = VARIABLE.fullmatch(str(value))
        values[name] = match.group(3) if match else str(value)
    return values


def test_the_explainer_is_wired_everywhere_but_the_gateway_never_waits_for_it():
    compose = load(COMPOSE_FILE)["services"]
    stack = load(STACK_FILE)["services"]
    (k8s,) = by_kind("Deployment")["explainer"]["spec"]["template"]["spec"]["containers"]
    for where, environment in (
        ("compose", compose["explainer"]["environment"]),
        ("swarm", stack["explainer"]["environment"]),
        ("kubernetes", k8s["env"]),
    ):
        env = explainer_env(environment)
        # A running explanation holds a handler thread for its whole stream:
        # health checks must always find another one.
        assert int(env["IC_GRPC_WORKERS"]) > int(env["IC_EXPLAIN_MAX_CONCURRENT"]), where
        assert env["IC_CLASSIFIER_ADDR"] == "dns:///classifier:50051", where
        assert env["IC_INPAINT_BACKENDS"].split(",") == [
            f"dns:///{name}:{GRPC_SERVICES[name]}" for name in INPAINTING
        ], where
    for where, environment in (
        ("compose", compose["gateway"]["environment"]),
        ("swarm", stack["gateway"]["environment"]),
    ):
        assert explainer_env(environment)["IC_EXPLAINER_ADDR"] == "dns:///explainer:50054", where
    # The brush does not need the explainer: the gateway starts without it.
    assert "explainer" not in compose["gateway"]["depends_on"]
    assert set(compose["explainer"]["depends_on"]) == {"classifier", "inpainter"}


def test_the_explainer_image_needs_nothing_beyond_its_requirements():
    """ic-explainer installs requirements/explainer.txt alone (no model, no
    OpenCV, no Flask): everything its code imports is there or in the standard library."""
    import subprocess
    import sys

    # grpcio looks for grpc_tools (dev only) and goes on without it: as in the image.
    probe = (
        "import importlib.abc, sys\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'grpc_tools': raise ImportError(name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import services.explainer.__main__, services.explainer.faithfulness\n"
        "import common.healthcheck\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    installed = {"grpc", "grpc_health", "grpc_reflection", "google", "numpy", "PIL"}
    installed |= {"prometheus_client", "typing_extensions", "cython_runtime"}
    installed |= {"ic", "common", "services"}  # the code the Dockerfile copies
    foreign = {
        name
        for name in run.stdout.split()
        if name not in sys.stdlib_module_names
        and not name.startswith("_")
        and name not in installed
    }
    assert foreign == set()
    requirements = (REPO / "requirements" / "explainer.txt").read_text()
    for package in ("grpcio", "protobuf", "numpy", "pillow", "prometheus-client"):
        assert re.search(rf"^{package}==", requirements, re.MULTILINE), package


def test_the_extra_models_override_mounts_cards_read_only():
    override = load(REPO / "deploy" / "compose" / "extra-models.yml")["services"]["classifier"]
    (volume,) = override["volumes"]
    assert volume["type"] == "bind" and volume["read_only"] is True
    assert volume["target"] == "/models-extra"
    assert volume["source"].startswith("${IC_EXTRA_MODELS_DIR:?")
    assert override["environment"]["IC_EXTRA_MODELS"].startswith("${IC_EXTRA_MODELS:?")
    classifier = load(COMPOSE_FILE)["services"]["classifier"]["environment"]
    assert classifier["IC_EXTRA_MODELS"] == "${IC_EXTRA_MODELS:-}"
