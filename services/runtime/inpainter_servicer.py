"""Adapts any EngineRegistry to the `Inpainter` service of proto/ic/v1/inpainter.proto.

Both inpainting services (OpenCV and PatchMatch) use this one servicer, so the
contract (checks, guarantees, streaming, cancellation, GetInfo) is written once.
Errors are raised as InvalidInput / EngineUnavailable and mapped to
INVALID_ARGUMENT / FAILED_PRECONDITION by the interceptor of grpc_server.py.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np

from common.config import env_int, env_str, replica_name
from common.errors import InvalidInput
from common.images import ImageLimits, decode_image, decode_mask, raw_image
from ic.v1 import image_pb2, inpainter_pb2, inpainter_pb2_grpc
from services.runtime.grpc_server import GrpcService, ServerConfig
from services.runtime.inpaint_engine import (
    EngineRegistry,
    EngineStopped,
    InpaintEngine,
    StopSignal,
    run_engine,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InpainterSettings:
    limits: ImageLimits
    max_masks: int
    # Threads that run the masks of InpaintMany calls, shared by all calls: a C
    # engine that releases the GIL keeps every core busy without oversubscribing.
    threads: int

    @classmethod
    def from_env(cls) -> InpainterSettings:
        defaults = ImageLimits()
        settings = cls(
            limits=ImageLimits(
                max_side=env_int("IC_MAX_SIDE", defaults.max_side),
                max_pixels=env_int("IC_MAX_PIXELS", defaults.max_pixels),
            ),
            max_masks=env_int("IC_MAX_MASKS", 1024),
            threads=env_int("IC_INPAINT_THREADS", min(4, len(os.sched_getaffinity(0)))),
        )
        if settings.max_masks < 1 or settings.threads < 1:
            raise SystemExit("IC_MAX_MASKS and IC_INPAINT_THREADS must be at least 1")
        return settings


def disabled_engines_from_env() -> list[str]:
    """IC_DISABLE_ENGINES: comma-separated engine names an operator switched off."""
    raw = env_str("IC_DISABLE_ENGINES", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


DEADLINE_SLACK_S = 0.25


def _stop_signal_for(context: grpc.ServicerContext) -> StopSignal:
    """A StopSignal set when the client cancels or the call's deadline passes."""
    stop = StopSignal()
    remaining = context.time_remaining()
    if remaining is not None and remaining < 1e9:  # no deadline reads as a huge number
        stop.deadline = time.monotonic() + remaining
    context.add_callback(stop.event.set)
    return stop


def mask_box(message: image_pb2.Mask, mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the mask's bounding box; the whole image for an
    empty mask (nothing removed: the whole image is the answer, unchanged).
    A rectangle mask is its own box (clipped to the image), found without a scan."""
    height, width = mask.shape
    if message.WhichOneof("pixels") == "rect":
        rect = message.rect
        return rect.x, rect.y, min(rect.width, width - rect.x), min(rect.height, height - rect.y)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0, 0, width, height
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    return left, top, int(cols[-1]) - left + 1, int(rows[-1]) - top + 1


def _answer_pixels(
    result: np.ndarray, message: image_pb2.Mask, mask: np.ndarray, crop: bool
) -> tuple[image_pb2.Image, image_pb2.MaskRect | None]:
    """The inpainted image, or with crop_to_mask only its mask's box and where it lies."""
    if not crop:
        return raw_image(result), None
    x, y, width, height = mask_box(message, mask)
    box = image_pb2.MaskRect(x=x, y=y, width=width, height=height)
    return raw_image(result[y : y + height, x : x + width]), box


def _abort_stopped(context: grpc.ServicerContext, stop: StopSignal, engine: str) -> None:
    # gRPC also fires the termination callback (setting stop.event) when the
    # deadline passes, so the deadline is checked first, with some slack: gRPC's
    # own clock may call the deadline a few milliseconds before ours does.
    if stop.deadline is not None and time.monotonic() >= stop.deadline - DEADLINE_SLACK_S:
        context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"engine {engine!r} stopped: the deadline passed before it finished",
        )
    context.abort(grpc.StatusCode.CANCELLED, f"engine {engine!r} stopped: the call was cancelled")


class InpainterServicer(inpainter_pb2_grpc.InpainterServicer):
    def __init__(self, registry: EngineRegistry, settings: InpainterSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.served_by = replica_name()
        self._pool = futures.ThreadPoolExecutor(
            max_workers=settings.threads, thread_name_prefix=f"{registry.service}-inpaint"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- shared steps ---------------------------------------------------------

    def _engine_and_params(self, name: str, params) -> tuple[InpaintEngine, dict[str, float]]:
        engine = self.registry.get(name)
        resolved = engine.resolve_params(dict(params))
        self.registry.require_available(engine)
        return engine, resolved

    def _decode_image(self, message: image_pb2.Image) -> np.ndarray:
        return decode_image(message, self.settings.limits, what="image")

    # -- RPCs -----------------------------------------------------------------

    def Inpaint(self, request, context):
        started = time.perf_counter()
        engine, params = self._engine_and_params(request.engine, request.params)
        image = self._decode_image(request.image)
        height, width = image.shape[:2]
        mask = decode_mask(request.mask, width, height, what="mask")
        stop = _stop_signal_for(context)
        try:
            result = run_engine(engine, image, mask, params, request.seed, stop, what="mask")
        except EngineStopped:
            _abort_stopped(context, stop, engine.name)
        pixels, box = _answer_pixels(result, request.mask, mask, request.crop_to_mask)
        return inpainter_pb2.InpaintResponse(
            image=pixels,
            engine=engine.name,
            served_by=self.served_by,
            elapsed_ms=(time.perf_counter() - started) * 1e3,
            box=box,
        )

    def InpaintMany(self, request, context) -> Iterator[inpainter_pb2.InpaintManyResult]:
        engine, params = self._engine_and_params(request.engine, request.params)
        count = len(request.masks)
        if count == 0:
            raise InvalidInput("masks is empty: send at least one mask")
        if count > self.settings.max_masks:
            raise InvalidInput(
                f"{count} masks in one call; at most {self.settings.max_masks} are allowed"
            )
        image = self._decode_image(request.image)
        height, width = image.shape[:2]
        # Cheap checks of every mask before any work, so a bad mask late in the
        # list is refused up front rather than after results were streamed.
        for index, message in enumerate(request.masks):
            _precheck_mask(message, width, height, f"masks[{index}]")
        stop = _stop_signal_for(context)
        crop = request.crop_to_mask

        def one(index: int) -> inpainter_pb2.InpaintManyResult:
            started = time.perf_counter()
            if stop.should_stop():
                raise futures.CancelledError()
            what = f"masks[{index}]"
            mask = decode_mask(request.masks[index], width, height, what=what)
            try:
                result = run_engine(engine, image, mask, params, request.seed, stop, what=what)
            except EngineStopped as exc:  # the call is over; nobody waits for this result
                raise futures.CancelledError() from exc
            pixels, box = _answer_pixels(result, request.masks[index], mask, crop)
            return inpainter_pb2.InpaintManyResult(
                index=index,
                image=pixels,
                served_by=self.served_by,
                elapsed_ms=(time.perf_counter() - started) * 1e3,
                box=box,
            )

        progress = {"started": 0, "sent": 0}

        def report_early_end() -> None:
            # Runs when the call ends for any reason; a cancelled stream's generator
            # is simply never resumed, so this is where its early end is seen.
            if progress["sent"] < count:
                log.info(
                    "InpaintMany ended early",
                    extra={"masks": count, **progress, "client_active": context.is_active()},
                )

        context.add_callback(report_early_end)
        yield from self._stream(one, count, stop, progress)

    def _stream(self, one, count: int, stop: StopSignal, progress: dict) -> Iterator:
        """Runs one(i) for i < count on the shared pool with a bounded number in
        flight, yielding each result as it is done. When the client leaves, the
        stop signal is set: nothing new is started and engines that can stop, stop."""
        in_flight = max(1, self.settings.threads)
        pending: set[futures.Future] = set()
        next_index = 0
        try:
            while next_index < count or pending:
                while next_index < count and len(pending) < in_flight and not stop.should_stop():
                    pending.add(self._pool.submit(one, next_index))
                    next_index += 1
                    progress["started"] = next_index
                if not pending:
                    break
                done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except futures.CancelledError:
                        continue
                    yield result
                    progress["sent"] += 1
        finally:
            stop.event.set()
            for future in pending:
                future.cancel()

    def GetInfo(self, request, context):
        engines = []
        for engine in self.registry.engines():
            available, reason = self.registry.availability(engine)
            reach = engine.reach(engine.resolve_params({}))
            engines.append(
                inpainter_pb2.EngineInfo(
                    name=engine.name,
                    description=engine.description,
                    available=available,
                    unavailable_reason=reason,
                    randomized=engine.randomized,
                    # What the engine reads with its default parameters (what
                    # the gateway asks for): a client may send only that part.
                    reach_px=reach.pixels,
                    reach_factor=reach.factor,
                    reads_whole_image=reach.whole_image,
                    params=[
                        inpainter_pb2.EngineParam(
                            name=param.name,
                            description=param.description,
                            default_value=param.default,
                            min_value=param.min,
                            max_value=param.max,
                        )
                        for param in engine.params
                    ],
                )
            )
        return inpainter_pb2.InpainterInfo(
            service=self.registry.service,
            engines=engines,
            default_engine=self.registry.default,
            served_by=self.served_by,
            max_side=self.settings.limits.max_side,
            max_pixels=self.settings.limits.max_pixels,
            max_masks=self.settings.max_masks,
        )


def _precheck_mask(message: image_pb2.Mask, width: int, height: int, what: str) -> None:
    """The checks of decode_mask that need no decoding (sizes, byte counts, rectangles)."""
    kind = message.WhichOneof("pixels")
    if kind is None:
        raise InvalidInput(f"{what} is empty: set raw, encoded or rect")
    if kind == "encoded":
        if not message.encoded:
            raise InvalidInput(f"{what} is empty")
        return  # decoded (and checked) by the worker
    # Raw and rect checks are cheap: run the real decoder and drop the result.
    decode_mask(message, width, height, what=what)


def warm_up_registry(registry: EngineRegistry, size: int = 32) -> None:
    """Runs every available engine once on a small image, so the first real call
    does not pay for imports, library loading or first-call allocations."""
    rows, cols = np.mgrid[0:size, 0:size]
    image = np.stack([rows * 8, cols * 8, (rows + cols) * 4], axis=2).astype(np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    mask[size // 3 : size // 2, size // 3 : size // 2] = True
    for engine in registry.engines():
        available, reason = registry.availability(engine)
        if not available:
            log.warning("engine unavailable", extra={"engine": engine.name, "reason": reason})
            continue
        started = time.perf_counter()
        run_engine(engine, image, mask, engine.resolve_params({}), seed=0)
        log.info(
            "engine warmed up",
            extra={"engine": engine.name, "ms": round((time.perf_counter() - started) * 1e3, 1)},
        )


INPAINTER_SERVICE_NAME = inpainter_pb2.DESCRIPTOR.services_by_name["Inpainter"].full_name


def inpainter_grpc_service(
    registry: EngineRegistry,
    config: ServerConfig,
    also: Sequence[tuple[Callable, object, str]] = (),
) -> GrpcService:
    """A GrpcService serving `registry` as ic.v1.Inpainter; SERVING once every
    available engine has run once. `also`: more servicers of the same process,
    as (add_XServicer_to_server, servicer, full service name)."""
    servicer = InpainterServicer(registry, InpainterSettings.from_env())

    def register(server: grpc.Server) -> None:
        inpainter_pb2_grpc.add_InpainterServicer_to_server(servicer, server)
        for add, extra, _ in also:
            add(extra, server)

    return GrpcService(
        registry.service,
        [INPAINTER_SERVICE_NAME, *(name for _, _, name in also)],
        register,
        config,
        warm_up=lambda: warm_up_registry(registry),
    )
