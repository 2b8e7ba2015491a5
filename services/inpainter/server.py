"""The OpenCV inpainting service as a gRPC server: its engine table, served by
the shared Inpainter servicer, and the Segmenter (GrabCut) beside it."""

from __future__ import annotations

from common.config import env_str
from ic.v1 import segmenter_pb2_grpc
from services.inpainter.engines import DEFAULT_ENGINE, build_registry
from services.inpainter.segmenter import SERVICE_NAME as SEGMENTER
from services.inpainter.segmenter import SegmenterServicer
from services.runtime.grpc_server import GrpcService, ServerConfig
from services.runtime.inpainter_servicer import (
    InpainterSettings,
    disabled_engines_from_env,
    inpainter_grpc_service,
)

GRPC_PORT = 50052
METRICS_PORT = 9102


def create_service(config: ServerConfig | None = None) -> GrpcService:
    registry = build_registry(
        default=env_str("IC_DEFAULT_ENGINE", DEFAULT_ENGINE),
        disabled=tuple(disabled_engines_from_env()),
    )
    segmenter = SegmenterServicer(InpainterSettings.from_env().limits)
    return inpainter_grpc_service(
        registry,
        config or ServerConfig.from_env(GRPC_PORT, METRICS_PORT),
        also=[(segmenter_pb2_grpc.add_SegmenterServicer_to_server, segmenter, SEGMENTER)],
    )
