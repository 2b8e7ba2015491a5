"""The built-in models for the benchmarks: loaded in process from their cards
(models/, filled by `make model`), and the classifier service serving them."""

from __future__ import annotations

from pathlib import Path

from services.classifier.cards import read_card
from services.classifier.core import ClassifierModel, ModelSettings
from services.classifier.fetch_model import ensure_card_model
from services.classifier.onnx_model import load_model
from tests.support.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "models"
BUILTIN = ("squeezenet1.1", "efficientnet-lite0")


def builtin_model(name: str = "squeezenet1.1", threads: int = 1) -> ClassifierModel:
    """A built-in card's model in this process, one ONNX Runtime thread as the service."""
    card = read_card(MODELS_DIR / f"{name}.json")
    ensure_card_model(card)
    model = load_model(card, ModelSettings(intra_op_threads=threads))
    model.warm_up()
    return model


def classifier_service(name: str = "bench_classifier", **env: str) -> ServiceProcess:
    """The classifier serving the built-in cards of models/."""
    return ServiceProcess(
        "services.classifier",
        env={"IC_MODELS_DIR": str(MODELS_DIR), "IC_EXTRA_MODELS": "", "IC_ORT_THREADS": "1", **env},
        health_service="ic.v1.Classifier",
        name=name,
    )
