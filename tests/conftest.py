"""Shared fixtures: the model, the gallery photos, and the real services started
on free loopback ports (one per test session unless a test needs its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.processes import REPO, ServiceProcess
from tests.support.served_models import models_dir_for_tests

# The fixtures of the gateway (gateway_service, stroke_png), the explainer and the
# browser tests live in their own modules.
pytest_plugins = [
    "tests.gateway_fixtures",
    "tests.explainer_fixtures",
    "tests.browser_fixtures",
]

SHARED = Path(os.environ.get("IC_SHARED_DIR", REPO.parent / "shared"))
MODEL_PATH = Path(os.environ.get("IC_TEST_MODEL", SHARED / "models" / "squeezenet1.1.onnx"))
IMAGES_DIR = SHARED / "images"

# The known top-1 of each gallery photo (ARCHITECTURE.md, "The model").
GALLERY_TOP1 = {
    "baseball": "ballplayer, baseball player",
    "sailboat": "dock, dockage, docking facility",
    "lighthouse": "beacon, lighthouse, beacon light, pharos",
    "beach": "seashore, coast, seacoast, sea-coast",
    "soccer": "soccer ball",
    "hockey": "puck, hockey puck",
    "hockey2": "puck, hockey puck",
    "skiing": "ski",
    "bank": "cash machine, cash dispenser, automated teller machine, automatic teller machine, automated teller, automatic teller, ATM",
}


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL_PATH.exists():
        pytest.fail(f"the test model is missing: {MODEL_PATH} (set IC_TEST_MODEL)")
    return MODEL_PATH


@pytest.fixture(scope="session")
def images_dir() -> Path:
    return IMAGES_DIR


@pytest.fixture(scope="session")
def photo_bytes(images_dir):
    """photo_bytes('soccer') -> the JPEG bytes of a gallery photo."""

    def load(name: str) -> bytes:
        return (images_dir / f"{name}.jpg").read_bytes()

    return load


@pytest.fixture(scope="session")
def photo_rgb(images_dir):
    """photo_rgb('soccer') -> HxWx3 uint8 RGB array of a gallery photo."""
    import numpy as np
    from PIL import Image

    def load(name: str):
        return np.asarray(Image.open(images_dir / f"{name}.jpg").convert("RGB"))

    return load


def classifier_process(model_path: Path, **env: str) -> ServiceProcess:
    """The classifier serving the built-in cards, SqueezeNet's ONNX file being `model_path`."""
    return ServiceProcess(
        "services.classifier",
        env={
            "IC_MODELS_DIR": str(models_dir_for_tests(model_path)),
            "IC_EXTRA_MODELS": "",
            "IC_ORT_THREADS": "1",
            **env,
        },
        health_service="ic.v1.Classifier",
    )


@contextmanager
def system_with_models(model_path: Path, extra_cards: list[Path], images_dir: Path) -> Iterator:
    """A classifier serving the built-in cards and `extra_cards` (IC_EXTRA_MODELS),
    an OpenCV inpainter, an explainer and a gateway, all of their own (so their
    logs show what each request did): yields (gateway, classifier, inpainter)."""
    from tests.explainer_fixtures import ExplainerProcess
    from tests.gateway_fixtures import GatewayProcess

    extra = ",".join(str(path) for path in extra_cards)
    with (
        classifier_process(model_path, IC_EXTRA_MODELS=extra) as classifier,
        ServiceProcess("services.inpainter", health_service="ic.v1.Inpainter") as inpainter,
        ExplainerProcess(classifier.address, [inpainter.address]) as explainer,
        GatewayProcess(
            classifier.address,
            [inpainter.address],
            IC_GALLERY_DIR=str(images_dir),
            IC_EXPLAINER_ADDR=explainer.address,
        ) as gateway,
    ):
        yield gateway, classifier, inpainter


@pytest.fixture(scope="session")
def classifier_service(model_path):
    with classifier_process(model_path) as proc:
        yield proc


@pytest.fixture(scope="session")
def inpainter_service():
    with ServiceProcess("services.inpainter", health_service="ic.v1.Inpainter") as proc:
        yield proc


@pytest.fixture(scope="session")
def patchmatch_service():
    with ServiceProcess("services.patchmatch", health_service="ic.v1.Inpainter") as proc:
        yield proc
