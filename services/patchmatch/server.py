"""The patchmatch service as a gRPC server: its engine table, served by the
shared Inpainter servicer."""

from __future__ import annotations

from common.config import env_str
from services.patchmatch.engines import DEFAULT_ENGINE, build_registry
from services.runtime.grpc_server import GrpcService, ServerConfig
from services.runtime.inpainter_servicer import disabled_engines_from_env, inpainter_grpc_service

GRPC_PORT = 50053
METRICS_PORT = 9103


def create_service(config: ServerConfig | None = None) -> GrpcService:
    registry = build_registry(
        default=env_str("IC_DEFAULT_ENGINE", DEFAULT_ENGINE),
        disabled=tuple(disabled_engines_from_env()),
    )
    return inpainter_grpc_service(
        registry, config or ServerConfig.from_env(GRPC_PORT, METRICS_PORT)
    )
