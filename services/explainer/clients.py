"""The explainer's clients: the classifier (round_robin over its replicas) and
the inpainting backends (common/backends.py: the same registry and fallback
rules as the gateway's). Channels are opened when the service starts, in the
process that uses them."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from common.backends import BackendRegistry
from common.errors import NotFound, ServiceCallFailed
from ic.v1 import classifier_pb2, classifier_pb2_grpc

# A model's info is asked again after this long (a classifier replaced by
# one serving other models is noticed).
MODEL_INFO_TTL_S = 60.0
DEFAULT_MAX_MASKS = 1024


@dataclass(frozen=True)
class DependencySettings:
    classifier_address: str
    inpaint_addresses: list[str]
    default_backend: str = "telea"
    info_timeout_s: float = 2.0
    health_timeout_s: float = 1.0
    backend_refresh_s: float = 5.0


class Dependencies:
    def __init__(self, settings: DependencySettings) -> None:
        from common.channels import open_channel

        self.settings = settings
        self.classifier_channel = open_channel(settings.classifier_address)
        self.classifier = classifier_pb2_grpc.ClassifierStub(self.classifier_channel)
        self.backends = BackendRegistry(
            settings.inpaint_addresses,
            settings.default_backend,
            info_timeout_s=settings.info_timeout_s,
            health_timeout_s=settings.health_timeout_s,
            refresh_s=settings.backend_refresh_s,
        )
        self._models: dict[str, tuple[float, classifier_pb2.ModelInfo]] = {}
        self._lock = threading.Lock()

    def model_info(
        self, model: str, deadline, metadata: Sequence[tuple[str, str]] = ()
    ) -> classifier_pb2.ModelInfo:
        """The classifier's description of `model` ("" = its default), remembered a while."""
        now = time.monotonic()
        with self._lock:
            cached = self._models.get(model)
        if cached is not None and now - cached[0] < MODEL_INFO_TTL_S:
            return cached[1]
        try:
            info = self.classifier.GetModelInfo(
                classifier_pb2.GetModelInfoRequest(model=model),
                timeout=min(self.settings.info_timeout_s, deadline.timeout()),
                metadata=tuple(metadata),
            )
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:  # the classifier's words for it
                raise NotFound(exc.details()) from exc
            raise ServiceCallFailed("classifier", exc) from exc
        with self._lock:
            self._models[model] = (now, info)
        return info

    def max_masks(self) -> int:
        """The fewest masks any backend takes in one InpaintMany call."""
        limits = [a.info.max_masks for a in self.backends.addresses if a.info and a.info.max_masks]
        return min(limits, default=DEFAULT_MAX_MASKS)

    def close(self) -> None:
        self.backends.close()
        self.classifier_channel.close()
