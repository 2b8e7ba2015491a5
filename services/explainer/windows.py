"""Every window's inpainting and reclassification, pipelined across the services.

The windows are dealt to a few InpaintMany streams (rectangle masks,
`crop_to_mask`: each result is just the window's box). A thread per stream
reads its results and groups them into ClassifyEdits batches (one base image,
many edited rectangles), each sent as soon as it is full while the inpainter
goes on, with a bounded number in flight. So both services work at once, and
the channels spread the calls round-robin over their replicas. Nothing is
decoded here: the inpainter's pixels are passed on as they came.

Windows listed in `first` (the coarse pass) go first: each stream inpaints its
share of them in a call of its own, sends them on in one batch, and waits for
the whole coarse pass to be classified before the rest; `run()` says when it is.

If a stream's backend fails with a fallback code (common/backends.py), the
stream goes on with the windows it has not received: on the same engine when
its service still answers its health check (another replica), otherwise on
the next engine of the registry's plan. Which engine filled each window is
recorded, so the answer can say so.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from prometheus_client import Counter

from common.backends import FALLBACK_CODES, BackendAddress, BackendRegistry
from common.channels import check_health
from common.errors import ServiceCallFailed, Unavailable
from ic.v1 import classifier_pb2, image_pb2, inpainter_pb2
from services.explainer.calls import (
    MESSAGE_OVERHEAD_BYTES,
    Cancelled,
    CancelScope,
    Deadline,
    PipelineSettings,
    image_bytes,
)

log = logging.getLogger(__name__)

WINDOWS_CLASSIFIED = Counter(
    "ic_explain_windows_classified_total",
    "Inpainted windows of explanations whose probabilities came back from the classifier.",
)
BACKEND_FALLBACKS = Counter(
    "ic_explain_backend_fallbacks_total",
    "Times an explanation's inpainting moved on to another engine.",
    ["from_engine", "to_engine"],
)
POLL_S = 0.05


def rect_mask(x: int, y: int, width: int, height: int) -> image_pb2.Mask:
    return image_pb2.Mask(rect=image_pb2.MaskRect(x=x, y=y, width=width, height=height))


class BackendCursor:
    """Where the windows of one explanation are inpainted: the registry's plan
    for the requested engine, walked forward as backends fail. Shared by the
    streams; building it raises NotFound / Unavailable before any work."""

    def __init__(self, registry: BackendRegistry, requested: str | None) -> None:
        self.registry = registry
        self.wanted = registry.wanted(requested)
        self.plan = registry.plan(requested)
        self._position = 0
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def current(self) -> tuple[int, str, BackendAddress]:
        """(position, engine, address) to use now; Unavailable when none is left."""
        with self._lock:
            if self._position >= len(self.plan):
                raise Unavailable(
                    f"no inpainting backend is available for {self.wanted!r}: "
                    + ("; ".join(self._failures) or "every backend service is down")
                )
            engine, address = self.plan[self._position]
            return self._position, engine, address

    def failed(self, position: int, exc: grpc.RpcError, delivered: bool) -> None:
        """The stream at plan `position` broke with a fallback code. After it had
        delivered results, a service that still answers its health check lost a
        replica or a connection (one aged out under a long stream): stay, the
        next call reaches a live one. Each such stay follows progress, so it
        cannot loop. A stream that broke before any result moves on."""
        engine, address = self.plan[position]
        if delivered:
            serving, _ = check_health(
                address.channel, "ic.v1.Inpainter", self.registry.health_timeout_s
            )
            if serving:
                log.info(
                    "inpainting stream broke; resuming on the same engine",
                    extra={"engine": engine, "address": address.target},
                )
                return
        with self._lock:
            if self._position != position:
                return  # another stream moved on already
            self._failures.append(f"{engine} at {address.target}: {exc.code().name}")
            self.registry.report_failure(address, exc)
            self._position += 1
            following = self.plan[self._position][0] if self._position < len(self.plan) else ""
        log.warning(
            "inpainting backend failed during an explanation",
            extra={"engine": engine, "address": address.target, "next": following or None},
        )
        if following:
            BACKEND_FALLBACKS.labels(engine, following).inc()


@dataclass
class WindowResults:
    """Per window: the pinned classes' probabilities [windows, classes], the
    top-1 class id, and the engine that filled it."""

    probabilities: np.ndarray
    top1: np.ndarray
    engines: list[str]
    # Whether the classifier computed every batch incrementally.
    incremental: bool = True
    # Work the services reported, summed over calls (ms): with both services
    # busy at once it exceeds the wall time.
    classifier_ms: float = 0.0
    inpainter_ms: float = 0.0
    classify_calls: int = 0
    served_by: set[str] = field(default_factory=set)


class WindowRun:
    """Inpaints the image under every mask and reclassifies the results.

    `run()` yields ("progress", done) as batches are answered and ("first",
    done) once every window of `first` is; afterwards `results` holds
    everything. Errors are raised from run(): Cancelled when the scope was
    cancelled from outside, ServiceCallFailed / Unavailable otherwise."""

    def __init__(
        self,
        classifier,
        cursor: BackendCursor,
        image: image_pb2.Image,
        masks: Sequence[image_pb2.Mask],
        class_ids: Sequence[int],
        model: str,
        settings: PipelineSettings,
        scope: CancelScope,
        deadline: Deadline,
        metadata: Sequence[tuple[str, str]] = (),
        first: Sequence[int] = (),
        max_masks: int = 1024,
    ) -> None:
        self.classifier = classifier
        self.cursor = cursor
        self.image = image
        self.masks = list(masks)
        self.class_ids = list(class_ids)
        self.model = model
        self.settings = settings
        self.scope = scope
        self.deadline = deadline
        self.metadata = tuple(metadata)
        self.first = set(first)
        self.max_masks = max_masks
        total = len(self.masks)
        self.results = WindowResults(
            probabilities=np.full((total, len(self.class_ids)), np.nan),
            top1=np.full(total, -1, dtype=np.int64),
            engines=[""] * total,
        )
        self.base_bytes = image_bytes(image)
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(settings.classify_in_flight)
        self._done = 0
        self._first_left = len(self.first)
        self._first_classified = threading.Event()
        self._pending = 0

    # -- the streams -----------------------------------------------------------

    def _streams(self) -> list[list[int]]:
        """The windows dealt round-robin to the streams, the `first` ones leading."""
        order = sorted(range(len(self.masks)), key=lambda i: i not in self.first)
        count = max(1, min(self.settings.inpaint_streams, len(order)))
        return [order[k::count] for k in range(count)]

    def _consume(self, windows: list[int]) -> None:
        try:
            self._inpaint(windows)
        except Cancelled:
            pass
        except grpc.RpcError as exc:
            if not self.scope.cancelled:
                self._fail(ServiceCallFailed("inpainting", exc))
        except Exception as exc:  # the error goes to the caller; never hang it
            self._fail(exc)

    def _inpaint(self, windows: list[int]) -> None:
        """This stream's windows: the coarse ones first, in a call of their own and
        sent on in one batch; the others once the coarse pass is classified. The
        pause costs nothing (the classifier keeps both cores busy meanwhile) and
        the preview no longer shares the machine with the rest of the grid."""
        first = [i for i in windows if i in self.first]
        rest = [i for i in windows if i not in self.first]
        if first:
            self._flush(self._inpaint_some(first, []))
            while not self._first_classified.wait(POLL_S):
                if self.scope.cancelled:
                    raise Cancelled()
        self._flush(self._inpaint_some(rest, []))

    def _inpaint_some(self, windows: list[int], batch: list) -> list:
        """Inpaints `windows` (moving on along the plan when a backend fails),
        submitting full batches as results arrive; returns the last, partial one."""
        remaining = list(windows)
        while remaining:
            if self.scope.cancelled:
                raise Cancelled()
            position, engine, address = self.cursor.current()
            chunk = remaining[: self.max_masks]
            call = address.stub.InpaintMany(
                inpainter_pb2.InpaintManyRequest(
                    image=self.image,
                    masks=[self.masks[i] for i in chunk],
                    engine=engine,
                    crop_to_mask=True,
                ),
                timeout=self.deadline.timeout(),
                metadata=self.metadata,
            )
            self.scope.register(call)
            received: set[int] = set()
            try:
                for result in call:
                    index = chunk[result.index]
                    received.add(index)
                    self.results.engines[index] = engine
                    with self._lock:
                        self.results.inpainter_ms += result.elapsed_ms
                    edit = self._edit(result)
                    if batch and not self._fits(batch, edit):
                        self._submit(batch)
                        batch = []
                    batch.append((index, edit))
            except grpc.RpcError as exc:
                if self.scope.cancelled:
                    raise Cancelled() from None
                if exc.code() not in FALLBACK_CODES:
                    raise ServiceCallFailed(f"inpainting ({engine})", exc) from exc
                self.cursor.failed(position, exc, delivered=bool(received))
            remaining = [i for i in remaining if i not in received]
        return batch

    def _fits(self, batch: list[tuple[int, classifier_pb2.ImageEdit]], edit) -> bool:
        """Whether `edit` may join `batch`: count and bytes (base image included)."""
        if len(batch) >= self.settings.batch_size:
            return False
        used = self.base_bytes + MESSAGE_OVERHEAD_BYTES + sum(len(e.rgb) for _, e in batch)
        return used + len(edit.rgb) <= self.settings.batch_bytes

    def _flush(self, batch: list) -> None:
        if batch:
            self._submit(batch)

    def _edit(self, result: inpainter_pb2.InpaintManyResult) -> classifier_pb2.ImageEdit:
        """The window as an edit of the base image: its box and the new pixels.
        A backend that ignores crop_to_mask answers the whole image: then so be it."""
        if result.HasField("box"):
            return classifier_pb2.ImageEdit(rect=result.box, rgb=result.image.raw.rgb)
        raw = result.image.raw
        whole = image_pb2.MaskRect(x=0, y=0, width=raw.width, height=raw.height)
        return classifier_pb2.ImageEdit(rect=whole, rgb=raw.rgb)

    # -- the classifier ----------------------------------------------------------

    def _submit(self, batch: list[tuple[int, classifier_pb2.ImageEdit]]) -> None:
        """ClassifyEdits for `batch`; blocks while too many calls are in flight."""
        while not self._in_flight.acquire(timeout=0.1):
            if self.scope.cancelled:
                raise Cancelled()
        if self.scope.cancelled:
            self._in_flight.release()
            raise Cancelled()
        with self._lock:
            self._pending += 1
        request = classifier_pb2.ClassifyEditsRequest(
            model=self.model,
            base=self.image,
            edits=[edit for _, edit in batch],
            top_k=1,
            pinned_class_ids=self.class_ids,
        )
        future = self.classifier.ClassifyEdits.future(
            request, timeout=self.deadline.timeout(), metadata=self.metadata
        )
        self.scope.register(future)
        indices = [index for index, _ in batch]
        future.add_done_callback(lambda answered: self._answered(indices, answered))

    def _answered(self, indices: list[int], future) -> None:
        self._in_flight.release()
        try:
            if future.cancelled():
                return
            self._record(indices, future.result())
        except grpc.RpcError as exc:
            if not self.scope.cancelled:
                self._fail(ServiceCallFailed("classifier", exc))
        except Exception as exc:  # a malformed answer must not hang the request
            self._fail(exc)
        finally:
            with self._lock:
                self._pending -= 1

    def _record(self, indices: list[int], response: classifier_pb2.ClassifyEditsResponse) -> None:
        results = self.results
        for index, result in zip(indices, response.results, strict=True):
            results.probabilities[index] = [p.probability for p in result.pinned]
            results.top1[index] = result.top[0].class_id
        with self._lock:
            self._done += len(indices)
            results.classifier_ms += response.timing_ms.get("total", 0.0)
            results.incremental = results.incremental and response.incremental
            results.classify_calls += 1
            results.served_by.add(response.served_by)
            first_before = self._first_left
            self._first_left -= sum(1 for i in indices if i in self.first)
            done, first_now = self._done, self._first_left
        WINDOWS_CLASSIFIED.inc(len(indices))
        if first_before > 0 and first_now == 0:
            self._first_classified.set()
        # One event per batch, so the caller sees the count and the end of the
        # first windows together, in order.
        self._events.put(("batch", (done, first_before > 0 and first_now == 0)))

    def _fail(self, error: BaseException) -> None:
        self._events.put(("error", error))
        self.scope.cancel()

    # -- the caller's side -------------------------------------------------------

    def run(self) -> Iterator[tuple[str, int]]:
        total = len(self.masks)
        # Each thread gets a copy of the caller's context: its request id, for the logs.
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._consume, windows),
                name="explain-inpaint",
            )
            for windows in self._streams()
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        try:
            done = 0
            while done < total:
                try:
                    kind, value = self._events.get(timeout=POLL_S)
                except queue.Empty:
                    self._check_stalled(threads, total)
                    continue
                if kind == "error":
                    raise value
                # Batches are answered on several threads: keep the count monotonic.
                done, first_complete = max(done, value[0]), value[1]
                yield "progress", done
                if first_complete:
                    yield "first", done
        except BaseException:
            self.scope.cancel()
            raise
        finally:
            for thread in threads:
                thread.join()

    def _check_stalled(self, threads: list[threading.Thread], total: int) -> None:
        """Raise when no more results can come: cancelled, or every stream ended
        and every batch was answered while windows are missing."""
        if self.scope.cancelled:
            raise Cancelled(f"cancelled after {self._done} of {total} windows")
        if self._pending or any(thread.is_alive() for thread in threads) or self._done >= total:
            return
        # Nothing more can arrive. An error may be queued behind the last results;
        # otherwise a service broke the contract: say so, don't hang.
        while not self._events.empty():
            kind, value = self._events.get_nowait()
            if kind == "error":
                raise value
        raise RuntimeError(f"only {self._done} of {total} windows came back")
