"""`python -m services.explainer`: the Explainer gRPC service on :50054 (metrics :9104).

Configuration (environment): IC_CLASSIFIER_ADDR, IC_INPAINT_BACKENDS,
IC_DEFAULT_BACKEND and the IC_EXPLAIN_* settings of config.py, plus the server
settings of services.runtime.grpc_server. Every explanation holds one handler
thread for its whole stream, so the server gets IC_EXPLAIN_MAX_CONCURRENT + 4
threads by default: health checks and the refused extra calls always find one.
"""

from __future__ import annotations

import logging

from common.config import env_str
from common.logs import configure_logging
from services.explainer.clients import Dependencies
from services.explainer.config import GRPC_PORT, METRICS_PORT, ExplainerConfig
from services.explainer.server import SERVICE_NAME, ExplainerServicer, register
from services.runtime.grpc_server import GrpcService, ServerConfig

log = logging.getLogger("explainer")
SPARE_THREADS = 4


def main() -> None:
    configure_logging("explainer", env_str("IC_LOG_LEVEL", "INFO"))
    config = ExplainerConfig.from_env()
    server_config = ServerConfig.from_env(
        GRPC_PORT,
        METRICS_PORT,
        workers=config.max_concurrent + SPARE_THREADS,
        # A stream lasts as long as its explanation: a connection that ages
        # out must not be closed under one.
        longest_call_s=config.timeout_s + 5.0,
    )
    if server_config.workers <= config.max_concurrent:
        raise SystemExit(
            f"IC_GRPC_WORKERS={server_config.workers} leaves no thread beside "
            f"IC_EXPLAIN_MAX_CONCURRENT={config.max_concurrent} explanations: health checks "
            "would wait behind them; give it more workers"
        )
    deps = Dependencies(config.dependencies)
    servicer = ExplainerServicer(deps, config)

    def warm_up() -> None:
        # Learn which engines live where before the first request needs it.
        deps.backends.ensure_started()
        up = [a.target for a in deps.backends.addresses if a.up]
        log.info("inpainting backends", extra={"answering": up})

    try:
        GrpcService(
            "explainer", [SERVICE_NAME], register(servicer), server_config, warm_up
        ).serve_forever()
    finally:
        deps.close()


if __name__ == "__main__":
    main()
