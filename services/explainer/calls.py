"""What every gRPC call of one explanation shares: a scope that cancels them
all, a deadline that bounds them all, and batches bounded by count and bytes.

Batches are limited by bytes as well as by count because a photo's windows
can be large (a faithfulness mask's box may be the whole image) and a gRPC
message has a size limit: a batch that would pass `max_bytes` is split
instead of failing with "message larger than max".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import grpc
import numpy as np

from common.config import env_int
from common.errors import ServiceCallFailed
from ic.v1 import classifier_pb2, image_pb2

MiB = 1024 * 1024
# What a request carries besides its pixels (field tags, lengths, class ids).
MESSAGE_OVERHEAD_BYTES = 4096


class Cancelled(Exception):
    """The explanation was cancelled (the caller went away)."""


class CancelScope:
    """Collects the gRPC calls of one explanation so they can all be cancelled."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._calls: list = []

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    def register(self, call) -> None:
        """A streaming call or a future: anything with .cancel()."""
        with self._lock:
            if not self.event.is_set():
                self._calls.append(call)
                return
        call.cancel()

    def cancel(self) -> None:
        with self._lock:
            if self.event.is_set():
                return
            self.event.set()
            calls, self._calls = self._calls, []
        for call in calls:
            call.cancel()


@dataclass(frozen=True)
class Deadline:
    """The moment (time.monotonic) by which the whole explanation must be done;
    every call it makes gets what is left as its own deadline."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def timeout(self) -> float:
        """Seconds left for the next call (a little more than none: the call
        itself then reports DEADLINE_EXCEEDED, which says what happened)."""
        return max(0.001, self.at - time.monotonic())


@dataclass(frozen=True)
class PipelineSettings:
    # Windows per ClassifyEdits call and calls in flight at once (all replicas
    # together); 0 = chosen by how the model computes edits (for_model).
    batch_size: int = 0
    classify_in_flight: int = 0
    # ... and at most this many bytes per request (base image and edits).
    batch_bytes: int = 32 * MiB
    # Parallel InpaintMany calls, each over a share of the windows.
    inpaint_streams: int = 2

    @classmethod
    def from_env(cls) -> PipelineSettings:
        settings = cls(
            batch_size=env_int("IC_EXPLAIN_BATCH", cls.batch_size),
            classify_in_flight=env_int("IC_EXPLAIN_CLASSIFY_IN_FLIGHT", cls.classify_in_flight),
            batch_bytes=env_int("IC_EXPLAIN_BATCH_BYTES", cls.batch_bytes),
            inpaint_streams=env_int("IC_EXPLAIN_INPAINT_STREAMS", cls.inpaint_streams),
        )
        if min(settings.batch_size, settings.classify_in_flight) < 0:
            raise SystemExit("IC_EXPLAIN_BATCH and IC_EXPLAIN_CLASSIFY_IN_FLIGHT must be 0 or more")
        if settings.inpaint_streams < 1:
            raise SystemExit("IC_EXPLAIN_INPAINT_STREAMS must be at least 1")
        if settings.batch_bytes < MiB:
            raise SystemExit("IC_EXPLAIN_BATCH_BYTES must be at least 1048576 (1 MiB)")
        return settings

    def for_model(self, incremental: bool, max_edits: int = 0) -> PipelineSettings:
        """Concrete batch size and calls in flight for a model that computes edits
        incrementally or in full. In full, ONNX Runtime does nearly all the work
        with the GIL released: two calls at once use two cores of one replica,
        and 16 images keep a batch in cache. Incrementally, much of the work is
        NumPy gathering and scattering small windows: two calls in one process
        only contend (measured slower), and larger batches let the engine group
        windows of like reach. With replicas on several machines, set
        IC_EXPLAIN_CLASSIFY_IN_FLIGHT to their number."""
        batch = self.batch_size or (48 if incremental else 16)
        return replace(
            self,
            batch_size=min(batch, max_edits or batch),
            classify_in_flight=self.classify_in_flight or (1 if incremental else 2),
        )


def split_batches(
    sizes: Sequence[int], max_count: int, max_bytes: int, fixed_bytes: int = 0
) -> list[list[int]]:
    """Indices 0..len(sizes)-1 in consecutive batches of at most `max_count`
    items and at most `max_bytes` in all (`fixed_bytes` of every request
    included, e.g. the base image). An item too large for any batch goes alone:
    the limit is ours, below the transport's, so it still fits there."""
    batches: list[list[int]] = []
    batch: list[int] = []
    used = fixed_bytes + MESSAGE_OVERHEAD_BYTES
    for index, size in enumerate(sizes):
        if batch and (len(batch) >= max_count or used + size > max_bytes):
            batches.append(batch)
            batch, used = [], fixed_bytes + MESSAGE_OVERHEAD_BYTES
        batch.append(index)
        used += size
    if batch:
        batches.append(batch)
    return batches


def image_bytes(message: image_pb2.Image) -> int:
    return len(message.raw.rgb) if message.WhichOneof("pixels") == "raw" else len(message.encoded)


@dataclass
class Classified:
    """Per image: the pinned classes' probabilities [images, classes] and the top-1 id."""

    probabilities: np.ndarray
    top1: np.ndarray


def classify_images(
    classifier,
    images: Sequence[image_pb2.Image],
    class_ids: Sequence[int],
    model: str,
    settings: PipelineSettings,
    scope: CancelScope,
    deadline: Deadline,
    metadata: Sequence[tuple[str, str]] = (),
) -> Classified:
    """The pinned probabilities and top-1 of many same-size images: Classify in
    batches bounded by count and bytes, `classify_in_flight` at once."""
    batches = split_batches(
        [image_bytes(image) for image in images], settings.batch_size, settings.batch_bytes
    )
    probabilities = np.full((len(images), len(class_ids)), np.nan)
    top1 = np.full(len(images), -1, dtype=np.int64)
    pending: list[tuple[list[int], grpc.Future]] = []

    def collect(indices: list[int], future) -> None:
        try:
            response = future.result()
        except grpc.FutureCancelledError:
            raise Cancelled("cancelled while classifying") from None
        except grpc.RpcError as exc:
            if scope.cancelled:
                raise Cancelled("cancelled while classifying") from None
            raise ServiceCallFailed("classifier", exc) from exc
        for index, result in zip(indices, response.results, strict=True):
            probabilities[index] = [p.probability for p in result.pinned]
            top1[index] = result.top[0].class_id

    for indices in batches:
        if scope.cancelled:
            raise Cancelled("cancelled while classifying")
        request = classifier_pb2.ClassifyRequest(
            images=[images[i] for i in indices],
            top_k=1,
            pinned_class_ids=list(class_ids),
            model=model,
        )
        future = classifier.Classify.future(
            request, timeout=deadline.timeout(), metadata=tuple(metadata)
        )
        scope.register(future)
        pending.append((indices, future))
        if len(pending) >= settings.classify_in_flight:
            collect(*pending.pop(0))
    for indices, future in pending:
        collect(indices, future)
    return Classified(probabilities, top1)
