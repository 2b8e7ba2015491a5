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
from concurrent.futures import ThreadPoolExecutor

import grpc
from flask import Flask, current_app

from common.backends import BackendRegistry
from common.channels import check_health, open_channel
from common.logs import request_id_var
from gateway.config import GatewayConfig
from gateway.errors import ApiError, from_rpc_error
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


class ClassifierClient:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.target = config.classifier_address
        self.channel = open_channel(self.target)
        self.stub = classifier_pb2_grpc.ClassifierStub(self.channel)
        self._model_info: classifier_pb2.ModelInfo | None = None

    def classify(self, request: classifier_pb2.ClassifyRequest) -> classifier_pb2.ClassifyResponse:
        try:
            return self.stub.Classify(
                request, timeout=self.config.classify_timeout_s, metadata=call_metadata()
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, "classifier") from exc

    def model_info(self) -> classifier_pb2.ModelInfo:
        """The model's name, labels and geometry; asked once, then remembered."""
        if self._model_info is None:
            try:
                self._model_info = self.stub.GetModelInfo(
                    classifier_pb2.GetModelInfoRequest(),
                    timeout=self.config.info_timeout_s,
                    metadata=call_metadata(),
                )
            except grpc.RpcError as exc:
                raise from_rpc_error(exc, "classifier") from exc
        return self._model_info

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


def require_model_info() -> classifier_pb2.ModelInfo:
    info = clients().classifier.model_info()
    if not info.labels:
        raise ApiError(503, "unavailable", "the classifier reported no labels")
    return info
