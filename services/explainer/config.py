"""The explainer's configuration: environment variables with defaults that work
locally (every service on localhost at its conventional port)."""

from __future__ import annotations

from dataclasses import dataclass

from common.channels import grpc_target
from common.config import env_float, env_int, env_str
from common.images import ImageLimits
from services.explainer.calls import PipelineSettings
from services.explainer.clients import DependencySettings
from services.explainer.explainer import ExplainLimits

GRPC_PORT = 50054
METRICS_PORT = 9104
DEFAULT_INPAINT_BACKENDS = "dns:///localhost:50052,dns:///localhost:50053"


@dataclass(frozen=True)
class ExplainerConfig:
    dependencies: DependencySettings
    limits: ExplainLimits
    pipeline: PipelineSettings
    image_limits: ImageLimits
    # Explanations at once; the next one is told RESOURCE_EXHAUSTED (HTTP 429).
    # Each keeps the inpainter and the classifier busy for about a second.
    max_concurrent: int = 4
    # An explanation's deadline when the caller sets none (or a longer one).
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls) -> ExplainerConfig:
        backends = env_str("IC_INPAINT_BACKENDS", DEFAULT_INPAINT_BACKENDS)
        config = cls(
            dependencies=DependencySettings(
                classifier_address=grpc_target(
                    env_str("IC_CLASSIFIER_ADDR", "dns:///localhost:50051")
                ),
                inpaint_addresses=[grpc_target(a) for a in backends.split(",") if a.strip()],
                default_backend=env_str("IC_DEFAULT_BACKEND", "telea"),
                info_timeout_s=env_float("IC_INFO_TIMEOUT_S", 2.0),
                health_timeout_s=env_float("IC_HEALTH_TIMEOUT_S", 1.0),
                backend_refresh_s=env_float("IC_BACKEND_REFRESH_S", 5.0),
            ),
            limits=ExplainLimits.from_env(),
            pipeline=PipelineSettings.from_env(),
            image_limits=ImageLimits(
                max_side=env_int("IC_MAX_SIDE", 4096),
                max_pixels=env_int("IC_MAX_PIXELS", 4096 * 4096),
            ),
            max_concurrent=env_int("IC_EXPLAIN_MAX_CONCURRENT", 4),
            timeout_s=env_float("IC_EXPLAIN_TIMEOUT_S", 120.0),
        )
        if config.max_concurrent < 1:
            raise SystemExit("IC_EXPLAIN_MAX_CONCURRENT must be at least 1")
        if not config.dependencies.inpaint_addresses:
            raise SystemExit("IC_INPAINT_BACKENDS names no inpainting service")
        return config
