"""`python -m services.classifier`: the classifier gRPC service.

Configuration (environment):
- IC_MODELS_DIR: the built-in model cards (default: models/ of the repository);
  IC_EXTRA_MODELS: comma-separated paths of more cards; IC_DEFAULT_MODEL: the
  model of requests that name none (default squeezenet1.1; if it cannot be
  served, the first model that can);
- IC_MAX_MODEL_BYTES: the largest ONNX file loaded (default 512 MiB);
- IC_ORT_THREADS: ONNX Runtime intra-op threads per inference (default 1: on a
  2-core machine one thread per inference, two inferences at once, beats two
  threads each); IC_MAX_BATCH, IC_MAX_EDITS, IC_MAX_SIDE, IC_MAX_PIXELS;
- IC_INCREMENTAL_CACHE_MB: the base images' activations kept for incremental
  ClassifyEdits, all models together (default 256); IC_INCREMENTAL_MIN_SAVING:
  the multiply-add saving from which a model uses incremental inference
  (default 2; services/classifier/incremental_edits.py);
- the server settings of services.runtime.grpc_server (IC_GRPC_PORT default
  50051, IC_METRICS_PORT default 9101, IC_GRPC_WORKERS default 4).

A card whose ONNX file is missing is fetched first (services/classifier/fetch_model.py).
A model that cannot be loaded is listed as unavailable with the reason; the
service stops only when no model at all can be served.
"""

from __future__ import annotations

import dataclasses
import logging

from common.config import env_float, env_int, env_str
from common.images import ImageLimits
from common.logs import configure_logging
from ic.v1 import classifier_pb2_grpc
from services.classifier.card_sources import configured_card_paths
from services.classifier.cards import ModelCard
from services.classifier.core import DEFAULT_MIN_SAVING, ClassifierModel, ModelSettings
from services.classifier.fetch_model import ensure_card_model
from services.classifier.incremental import ActivationCache
from services.classifier.model_graph import DEFAULT_MAX_MODEL_BYTES
from services.classifier.onnx_model import load_model
from services.classifier.registry import ModelRegistry
from services.classifier.server import SERVICE_NAME, ClassifierServicer
from services.runtime.grpc_server import GrpcService, ServerConfig

log = logging.getLogger("classifier")
DEFAULT_MODEL = "squeezenet1.1"


def settings_from_env() -> ModelSettings:
    cache_mb = env_int("IC_INCREMENTAL_CACHE_MB", 256)
    min_saving = env_float("IC_INCREMENTAL_MIN_SAVING", DEFAULT_MIN_SAVING)
    if cache_mb < 0 or not min_saving >= 0:
        raise SystemExit(
            "IC_INCREMENTAL_CACHE_MB and IC_INCREMENTAL_MIN_SAVING must be 0 or more "
            f"(got {cache_mb} and {min_saving})"
        )
    return ModelSettings(
        intra_op_threads=env_int("IC_ORT_THREADS", 1),
        max_batch=env_int("IC_MAX_BATCH", 64),
        max_edits=env_int("IC_MAX_EDITS", 1024),
        limits=ImageLimits(
            max_side=env_int("IC_MAX_SIDE", 4096),
            max_pixels=env_int("IC_MAX_PIXELS", 4096 * 4096),
        ),
        max_model_bytes=env_int("IC_MAX_MODEL_BYTES", DEFAULT_MAX_MODEL_BYTES),
        base_cache=ActivationCache(cache_mb << 20),
        incremental_min_saving=min_saving,
    )


def fetch_and_load(card: ModelCard, settings: ModelSettings) -> ClassifierModel:
    """The card's model: its ONNX file fetched if missing, loaded, warmed up."""
    card = dataclasses.replace(card, onnx=ensure_card_model(card))
    model = load_model(card, settings)
    model.warm_up()
    return model


def main() -> None:
    configure_logging("classifier", env_str("IC_LOG_LEVEL", "INFO"))
    config = ServerConfig.from_env(default_port=50051, default_metrics_port=9101)
    servicer = ClassifierServicer()

    def register(server) -> None:
        classifier_pb2_grpc.add_ClassifierServicer_to_server(servicer, server)

    def warm_up() -> None:
        registry = ModelRegistry.load(
            configured_card_paths(),
            settings_from_env(),
            fetch_and_load,
            default_name=env_str("IC_DEFAULT_MODEL", DEFAULT_MODEL),
        )
        if not registry.models:
            problems = "; ".join(
                f"{e.card_path}: {e.reason}" for e in registry.unavailable.values()
            )
            raise SystemExit(f"classifier: no model can be served ({problems or 'no model cards'})")
        servicer.attach(registry)
        log.info(
            "models ready",
            extra={
                "default": registry.default_name,
                "models": list(registry.models),
                "unavailable": list(registry.unavailable),
            },
        )

    GrpcService("classifier", [SERVICE_NAME], register, config, warm_up).serve_forever()


if __name__ == "__main__":
    main()
