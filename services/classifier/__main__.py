"""`python -m services.classifier`: the classifier gRPC service.

Configuration (environment): IC_MODEL_PATH (else the fetch step's search and
download, see fetch_model.py), IC_ORT_THREADS (ONNX Runtime intra-op threads,
default 1: on a 2-core machine one thread per inference, two inferences at
once, beats two threads each), IC_MAX_BATCH, IC_MAX_SIDE, IC_MAX_PIXELS and the
server settings of services.runtime.grpc_server (IC_GRPC_PORT default 50051,
IC_METRICS_PORT default 9101, IC_GRPC_WORKERS default 4).
"""

from __future__ import annotations

import logging

from common.config import env_int, env_str
from common.images import ImageLimits
from common.logs import configure_logging
from ic.v1 import classifier_pb2_grpc
from services.classifier.core import SqueezeNetClassifier
from services.classifier.fetch_model import ModelFetchError, ensure_model
from services.classifier.server import SERVICE_NAME, ClassifierServicer
from services.runtime.grpc_server import GrpcService, ServerConfig

log = logging.getLogger("classifier")


def main() -> None:
    configure_logging("classifier", env_str("IC_LOG_LEVEL", "INFO"))
    config = ServerConfig.from_env(default_port=50051, default_metrics_port=9101)
    servicer = ClassifierServicer()

    def register(server) -> None:
        classifier_pb2_grpc.add_ClassifierServicer_to_server(servicer, server)

    def warm_up() -> None:
        try:
            model_path = ensure_model()
        except ModelFetchError as exc:
            raise SystemExit(f"classifier: {exc}") from exc
        classifier = SqueezeNetClassifier(
            model_path,
            intra_op_threads=env_int("IC_ORT_THREADS", 1),
            max_batch=env_int("IC_MAX_BATCH", 64),
            max_edits=env_int("IC_MAX_EDITS", 1024),
            limits=ImageLimits(
                max_side=env_int("IC_MAX_SIDE", 4096),
                max_pixels=env_int("IC_MAX_PIXELS", 4096 * 4096),
            ),
        )
        classifier.warm_up()
        servicer.attach(classifier)
        log.info("model loaded", extra={"model_path": str(model_path)})

    GrpcService("classifier", [SERVICE_NAME], register, config, warm_up).serve_forever()


if __name__ == "__main__":
    main()
