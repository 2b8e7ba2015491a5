"""Every window's inpainting and reclassification, pipelined across the services.

The windows are split into a few chunks; each chunk is one InpaintMany call
(rectangle masks, results streamed back), consumed by its own thread. Each
consumer groups the streamed images into batches and sends every batch to
Classify as soon as it is full (`Classify.future`), asking only for the pinned
classes' probabilities. So the inpainter and the classifier work at the same
time, several InpaintMany calls share the inpainting replicas and several
Classify calls in flight share the classifier replicas (the channels are
round_robin). The inpainted images are passed on as the inpainter's raw Image
messages: nothing is decoded or re-encoded in the gateway.

A `CancelScope` owns every stream and future of one explanation: cancelling
it (the client went away) cancels them all, which the services see at once.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
from prometheus_client import Counter

from common.config import env_float, env_int
from ic.v1 import classifier_pb2, image_pb2, inpainter_pb2

log = logging.getLogger(__name__)

WINDOWS_CLASSIFIED = Counter(
    "ic_explain_windows_classified_total",
    "Inpainted windows of explanations whose probabilities came back from the classifier.",
)
EXPLANATIONS_CANCELLED = Counter(
    "ic_explain_cancelled_total", "Explanations stopped because the client went away."
)

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """The explanation was cancelled (the client disconnected)."""


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
class PipelineSettings:
    # Images per Classify call: one ONNX Runtime run. 8-16 keeps the batch in
    # cache (10.4 ms/image at 16, 15 at 32 on the 2-core dev machine).
    batch_size: int = 16
    # Parallel InpaintMany calls, each over a chunk of the windows.
    inpaint_streams: int = 2
    # Classify calls in flight at once (all replicas together).
    classify_in_flight: int = 2
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls) -> PipelineSettings:
        settings = cls(
            batch_size=env_int("IC_EXPLAIN_BATCH", cls.batch_size),
            inpaint_streams=env_int("IC_EXPLAIN_INPAINT_STREAMS", cls.inpaint_streams),
            classify_in_flight=env_int("IC_EXPLAIN_CLASSIFY_IN_FLIGHT", cls.classify_in_flight),
            timeout_s=env_float("IC_EXPLAIN_TIMEOUT_S", cls.timeout_s),
        )
        if min(settings.batch_size, settings.inpaint_streams, settings.classify_in_flight) < 1:
            raise SystemExit(
                "IC_EXPLAIN_BATCH, IC_EXPLAIN_INPAINT_STREAMS and "
                "IC_EXPLAIN_CLASSIFY_IN_FLIGHT must be at least 1"
            )
        return settings


def rect_mask(x: int, y: int, width: int, height: int) -> image_pb2.Mask:
    return image_pb2.Mask(rect=image_pb2.MaskRect(x=x, y=y, width=width, height=height))


def split_chunks(count: int, parts: int) -> list[list[int]]:
    """0..count-1 in at most `parts` contiguous, nearly equal chunks."""
    parts = max(1, min(parts, count))
    bounds = np.linspace(0, count, parts + 1).round().astype(int)
    return [list(range(a, b)) for a, b in itertools.pairwise(bounds.tolist()) if b > a]


@dataclass
class Reclassified:
    """Per image: the pinned classes' probabilities [images, classes] and the top-1 id."""

    probabilities: np.ndarray
    top1: np.ndarray
    # Work the services reported, summed over calls (ms): with both services
    # busy at once it exceeds the wall time.
    classifier_ms: float = 0.0
    inpainter_ms: float = 0.0


class _BatchClassifier:
    """Sends batches of images to Classify (a bounded number in flight) and
    collects the pinned probabilities by index; the first error cancels the scope."""

    def __init__(
        self,
        classifier,
        total: int,
        class_ids: Sequence[int],
        scope: CancelScope,
        settings: PipelineSettings,
        progress: Progress | None,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self.classifier = classifier
        self.class_ids = list(class_ids)
        self.scope = scope
        self.settings = settings
        self.progress = progress
        self.metadata = tuple(metadata)
        self.probabilities = np.full((total, len(class_ids)), np.nan)
        self.top1 = np.full(total, -1, dtype=np.int64)
        self.total = total
        self.done = 0
        self.pending = 0  # Classify calls sent and not yet answered
        self.classifier_ms = 0.0
        self.inpainter_ms = 0.0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = threading.BoundedSemaphore(settings.classify_in_flight)
        if total == 0:
            self.finished.set()

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
        self.finished.set()
        self.scope.cancel()

    def submit(self, batch: list[tuple[int, image_pb2.Image]]) -> None:
        """Classify `batch` ((index, image) pairs); blocks while too many are in flight."""
        while not self.in_flight.acquire(timeout=0.1):
            if self.scope.cancelled:
                return
        if self.scope.cancelled:
            self.in_flight.release()
            return
        with self.lock:
            self.pending += 1
        request = classifier_pb2.ClassifyRequest(
            images=[image for _, image in batch], top_k=1, pinned_class_ids=self.class_ids
        )
        future = self.classifier.Classify.future(
            request, timeout=self.settings.timeout_s, metadata=self.metadata
        )
        self.scope.register(future)
        indices = [index for index, _ in batch]
        future.add_done_callback(lambda fut: self._answered(indices, fut))

    def _answered(self, indices: list[int], future) -> None:
        self.in_flight.release()
        with self.lock:
            self.pending -= 1
        if future.cancelled():
            return
        try:
            self._record(indices, future.result())
        except grpc.RpcError as exc:
            if not self.scope.cancelled:
                self.fail(exc)
        except Exception as exc:  # a malformed answer must not hang the request
            self.fail(exc)

    def _record(self, indices: list[int], response: classifier_pb2.ClassifyResponse) -> None:
        for index, result in zip(indices, response.results, strict=True):
            self.probabilities[index] = [p.probability for p in result.pinned]
            self.top1[index] = result.top[0].class_id
        with self.lock:
            self.done += len(indices)
            self.classifier_ms += response.timing_ms.get("total", 0.0)
            done = self.done
        WINDOWS_CLASSIFIED.inc(len(indices))
        if self.progress is not None:
            self.progress(done, self.total)
        if done >= self.total:
            self.finished.set()

    def wait(self, producers: Sequence[threading.Thread]) -> Reclassified:
        """Until every image is classified, an error, or the scope is cancelled."""
        while not self.finished.wait(0.05):
            if self.scope.cancelled:
                break
            if self.pending == 0 and not any(thread.is_alive() for thread in producers):
                # Every producer ended and every batch was answered, yet images
                # are missing: a service broke the contract. Say so, don't hang.
                if self.done < self.total:
                    self.fail(RuntimeError(f"only {self.done} of {self.total} results came back"))
                break
        if self.error is None and self.done < self.total:
            self.scope.cancel()
        for thread in producers:
            thread.join()
        if self.error is not None:
            raise self.error
        if self.done < self.total:
            EXPLANATIONS_CANCELLED.inc()
            raise Cancelled(f"cancelled after {self.done} of {self.total} images")
        return Reclassified(self.probabilities, self.top1, self.classifier_ms, self.inpainter_ms)


def window_probabilities(
    classifier,
    inpainter,
    image: image_pb2.Image,
    masks: Sequence[image_pb2.Mask],
    class_ids: Sequence[int],
    engine: str,
    scope: CancelScope,
    settings: PipelineSettings,
    progress: Progress | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> Reclassified:
    """p(c | image with mask i inpainted) for every mask i and class c, and the top-1.

    `classifier` and `inpainter` are the gRPC stubs. Raises grpc.RpcError from
    either service, or Cancelled when `scope` was cancelled from outside.
    """
    batcher = _BatchClassifier(
        classifier, len(masks), class_ids, scope, settings, progress, metadata
    )

    def consume(chunk: list[int]) -> None:
        try:
            call = inpainter.InpaintMany(
                inpainter_pb2.InpaintManyRequest(
                    image=image, masks=[masks[i] for i in chunk], engine=engine
                ),
                timeout=settings.timeout_s,
                metadata=tuple(metadata),
            )
            scope.register(call)
            batch: list[tuple[int, image_pb2.Image]] = []
            for result in call:
                with batcher.lock:
                    batcher.inpainter_ms += result.elapsed_ms
                batch.append((chunk[result.index], result.image))
                if len(batch) >= settings.batch_size:
                    batcher.submit(batch)
                    batch = []
            if batch:
                batcher.submit(batch)
        except grpc.RpcError as exc:
            if not scope.cancelled:
                batcher.fail(exc)
        except Exception as exc:
            batcher.fail(exc)

    threads = [
        threading.Thread(target=consume, args=(chunk,), name="explain-inpaint", daemon=True)
        for chunk in split_chunks(len(masks), settings.inpaint_streams)
    ]
    for thread in threads:
        thread.start()
    return batcher.wait(threads)


def classify_images(
    classifier,
    images: Sequence[image_pb2.Image],
    class_ids: Sequence[int],
    scope: CancelScope,
    settings: PipelineSettings,
    metadata: Sequence[tuple[str, str]] = (),
) -> Reclassified:
    """The pinned probabilities and top-1 of many same-size images, in batches."""
    batcher = _BatchClassifier(classifier, len(images), class_ids, scope, settings, None, metadata)

    def produce() -> None:
        step = settings.batch_size
        for start in range(0, len(images), step):
            if scope.cancelled:
                return
            batcher.submit([(i, images[i]) for i in range(start, min(start + step, len(images)))])

    producer = threading.Thread(target=produce, name="explain-classify", daemon=True)
    producer.start()
    return batcher.wait([producer])
