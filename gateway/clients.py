"""The gateway's clients of the gRPC services, shared by every blueprint.

`clients(app)` (or `current_app.extensions["ic"]`) returns the `Clients` of
this process: the classifier client, the inpainting backend registry and the
explainer client. They
are built on first use and rebuilt if the process has forked since, so a
gunicorn worker never inherits its parent's gRPC channels.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from flask import Flask, current_app

from common.backends import BackendRegistry
from common.channels import check_health, open_channel
from common.logs import request_id_var
from gateway.config import GatewayConfig
from gateway.errors import ApiError, from_rpc_error, not_found, unavailable
from ic.v1 import (
    classifier_pb2,
    classifier_pb2_grpc,
    explainer_pb2,
    explainer_pb2_grpc,
    segmenter_pb2,
    segmenter_pb2_grpc,
)


def call_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata of the current request: its id, so the services' logs join ours."""
    return (("x-request-id", request_id_var.get()),)


# An unknown model name makes the client re-read the model list, at most this often.
MODEL_LIST_REFRESH_S = 5.0


class ClassifierClient:
    """The classifier's stub, and what it said about its models: the list (ListModels)
    and each model's info with labels (GetModelInfo), asked once and remembered.
    A name missing from the list makes it ask again (a restarted classifier may
    serve other cards), at most every MODEL_LIST_REFRESH_S."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.target = config.classifier_address
        self.channel = open_channel(self.target)
        self.stub = classifier_pb2_grpc.ClassifierStub(self.channel)
        self._models: classifier_pb2.ModelList | None = None
        self._models_at = 0.0
        self._infos: dict[str, classifier_pb2.ModelInfo] = {}
        self._lock = threading.Lock()

    def _call(self, method, request, timeout: float):
        try:
            return method(request, timeout=timeout, metadata=call_metadata())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, "classifier") from exc

    def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.ClassifyResponse:
        return self._call(self.stub.Classify, request, self.config.classify_timeout_s)

    def classify_edits(
        self, request: classifier_pb2.ClassifyEditsRequest
    ) -> classifier_pb2.ClassifyEditsResponse:
        return self._call(self.stub.ClassifyEdits, request, self.config.classify_timeout_s)

    def models(self, refresh: bool = False) -> classifier_pb2.ModelList:
        """Every model the classifier serves or lists as unavailable (without labels)."""
        stale = time.monotonic() - self._models_at > MODEL_LIST_REFRESH_S
        if self._models is None or (refresh and stale):
            models = self._call(
                self.stub.ListModels, classifier_pb2.ListModelsRequest(), self.config.info_timeout_s
            )
            with self._lock:
                if self._models is not None and _names(models) != _names(self._models):
                    self._infos.clear()
                self._models, self._models_at = models, time.monotonic()
        return self._models

    def resolve(self, name: str | None) -> classifier_pb2.ModelInfo:
        """The info (with labels) of model `name` (None: the default); 404 when the
        classifier has no such model, 503 when it lists it as unavailable."""
        listing = self.models()
        wanted = name or listing.default_model
        entry = _find(listing, wanted)
        if entry is None and name:
            entry = _find(self.models(refresh=True), wanted)
        if entry is None:
            raise not_found(f"unknown model {wanted[:64]!r}; {describe_models(self.models())}")
        if not entry.available:
            raise unavailable(f"model {entry.name!r} is unavailable: {entry.unavailable_reason}")
        info = self._infos.get(entry.name)
        if info is None:
            info = self._call(
                self.stub.GetModelInfo,
                classifier_pb2.GetModelInfoRequest(model=entry.name),
                self.config.info_timeout_s,
            )
            self._infos[entry.name] = info
        return info

    def model_info(self) -> classifier_pb2.ModelInfo:
        """The default model's info, with labels."""
        return self.resolve(None)

    def num_classes(self) -> int:
        return self.model_info().num_classes

    def health(self) -> tuple[bool, str]:
        return check_health(self.channel, "ic.v1.Classifier", self.config.health_timeout_s)

    def close(self) -> None:
        self.channel.close()


class ExplainerClient:
    """The Explainer service: explanations are relayed to it as one stream each."""

    SERVICE = "ic.v1.Explainer"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.target = config.explainer_address
        self.channel = open_channel(self.target)
        self.stub = explainer_pb2_grpc.ExplainerStub(self.channel)

    def explain(self, request: explainer_pb2.ExplainRequest):
        """The stream of one explanation (an iterator with .cancel()); errors
        surface when it is read."""
        return self.stub.Explain(
            request, timeout=self.config.explain_timeout_s, metadata=call_metadata()
        )

    def health(self) -> tuple[bool, str]:
        return check_health(self.channel, self.SERVICE, self.config.health_timeout_s)

    def close(self) -> None:
        self.channel.close()


def _names(listing: classifier_pb2.ModelList) -> list[tuple[str, bool]]:
    return [(m.name, m.available) for m in listing.models]


def _find(listing: classifier_pb2.ModelList, name: str) -> classifier_pb2.ModelInfo | None:
    return next((m for m in listing.models if m.name == name), None)


def describe_models(listing: classifier_pb2.ModelList) -> str:
    served = [m.name for m in listing.models if m.available]
    down = [m.name for m in listing.models if not m.available]
    text = f"the models are: {', '.join(served) or 'none'}"
    return text + (f" (unavailable: {', '.join(down)})" if down else "")


class SegmenterClient:
    """The Segmenter (GrabCut) beside the OpenCV inpainter: the select tool's service."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.target = config.segmenter_address
        self.channel = open_channel(self.target)
        self.stub = segmenter_pb2_grpc.SegmenterStub(self.channel)

    def segment(self, request: segmenter_pb2.SegmentRequest) -> segmenter_pb2.SegmentResponse:
        try:
            return self.stub.Segment(
                request, timeout=self.config.segment_timeout_s, metadata=call_metadata()
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, "segmenter") from exc

    def close(self) -> None:
        self.channel.close()


SIDE_WORK_NICENESS = 19


def lower_this_threads_priority() -> None:
    """Make the calling thread yield the CPU to everything else of the machine.

    Work done beside a request (encoding a picture while the classifier runs)
    must not take a core from the services that request waits on: on two
    cores, at normal priority it cost the /edit it overlapped as much as it
    saved. Linux gives each thread its own nice value; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return  # elsewhere a thread id is no "process" for setpriority
    with contextlib.suppress(OSError):  # not allowed: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SIDE_WORK_NICENESS)


class Clients:
    """Everything of this process that talks to the gRPC services, and the
    threads that do a request's CPU work while it waits on one of them."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        # E.g. /edit encodes its picture here while its own thread waits on
        # Classify. A blocking call on the request thread plus a hand-off to a
        # standing thread costs ~1 ms less than a gRPC future, which starts a
        # thread of its own per call. One per request thread: never a queue.
        self.side_work = ThreadPoolExecutor(
            max_workers=max(1, config.threads),
            thread_name_prefix="side-work",
            initializer=lower_this_threads_priority,
        )
        # Calls made beside the request thread's own, at normal priority: the
        # second model's Classify of a comparison.
        self.parallel_calls = ThreadPoolExecutor(
            max_workers=max(1, config.threads), thread_name_prefix="parallel-call"
        )
        self.classifier = ClassifierClient(config)
        self.segmenter = SegmenterClient(config)
        self.backends = BackendRegistry(
            config.inpaint_addresses,
            config.default_backend,
            info_timeout_s=config.info_timeout_s,
            health_timeout_s=config.health_timeout_s,
            refresh_s=config.backend_refresh_s,
        )
        self.explainer = ExplainerClient(config)

    def close(self) -> None:
        self.side_work.shutdown(wait=False, cancel_futures=True)
        self.parallel_calls.shutdown(wait=False, cancel_futures=True)
        self.classifier.close()
        self.segmenter.close()
        self.backends.close()
        self.explainer.close()


class ClientsHolder:
    """Builds `Clients` lazily, once per process (fork-safe)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._clients: Clients | None = None
        self._lock = threading.Lock()

    def get(self) -> Clients:
        current = self._clients
        if current is not None and current.pid == os.getpid():
            return current
        with self._lock:
            if self._clients is None or self._clients.pid != os.getpid():
                # After a fork the inherited object is unusable; do not close it
                # (its channels belong to the parent), just replace it.
                self._clients = Clients(self.config)
            return self._clients

    def close(self) -> None:
        if self._clients is not None and self._clients.pid == os.getpid():
            self._clients.close()
            self._clients = None


def clients(app: Flask | None = None) -> Clients:
    """The Clients of this process for `app` (default: the current app)."""
    holder: ClientsHolder = (app or current_app).extensions["ic"]
    return holder.get()


def require_model_info(name: str | None = None) -> classifier_pb2.ModelInfo:
    """Model `name`'s info (None: the default): 404 unknown, 503 unavailable or no labels."""
    info = clients().classifier.resolve(name)
    if not info.labels:
        raise ApiError(503, "unavailable", "the classifier reported no labels")
    return info
