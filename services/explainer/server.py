"""The thin gRPC adapter of the explainer (proto/ic/v1/explainer.proto).

Explain runs one explanation (explainer.py) and streams its events. A
request that is wrong, or whose dependencies are down, ends before the first
event (the interceptor of services/runtime maps the error to its status).
When the caller cancels, the gRPC callback cancels every call the
explanation made, and the work stops. At most `max_concurrent` explanations
run at once; the next one is told RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator

import grpc
import numpy as np
from prometheus_client import Counter

from common.config import replica_name
from common.errors import Busy, Unavailable
from common.images import decode_image
from common.logs import request_id_var
from ic.v1 import classifier_pb2, explainer_pb2, explainer_pb2_grpc, image_pb2
from services.explainer import core
from services.explainer.calls import Cancelled, CancelScope, Deadline
from services.explainer.clients import Dependencies
from services.explainer.config import ExplainerConfig
from services.explainer.explainer import (
    ClassInfo,
    Event,
    Explainer,
    ExplainOptions,
    Explanation,
    Finished,
    Preview,
    Progress,
)

log = logging.getLogger(__name__)

SERVICE_NAME = explainer_pb2.DESCRIPTOR.services_by_name["Explainer"].full_name
EXPLANATIONS_CANCELLED = Counter(
    "ic_explain_cancelled_total", "Explanations stopped because the caller went away."
)


def options_from(request: explainer_pb2.ExplainRequest) -> ExplainOptions:
    def optional(name: str):
        return getattr(request, name) if request.HasField(name) else None

    defaults = ExplainOptions()
    competitors = optional("competitors")
    fix_fraction = optional("fix_fraction")
    return ExplainOptions(
        target=optional("target"),
        window=optional("window"),
        stride=optional("stride"),
        competitors=defaults.competitors if competitors is None else competitors,
        fix=request.fix,
        fix_fraction=defaults.fix_fraction if fix_fraction is None else fix_fraction,
        faithfulness=request.faithfulness,
        backend=request.backend or None,
        model=request.model,
        preview=request.preview,
    )


# -- events -> messages ------------------------------------------------------------


def class_message(info: ClassInfo) -> classifier_pb2.ClassProbability:
    return classifier_pb2.ClassProbability(
        class_id=info.class_id, label=info.label, probability=info.probability, rank=info.rank
    )


def map_message(raw: np.ndarray) -> explainer_pb2.EvidenceMap:
    gray, low, high = core.to_gray8(raw)
    height, width = gray.shape
    return explainer_pb2.EvidenceMap(
        width=width, height=height, data=gray.tobytes(), min=low, max=high
    )


def maps_message(
    pass_name: str,
    windows: int,
    maps: core.EvidenceMaps,
    target: ClassInfo,
    competitors: list[ClassInfo],
) -> explainer_pb2.ExplainMaps:
    message = explainer_pb2.ExplainMaps(
        windows=windows,
        hinder=map_message(maps.hinder),
        support=map_message(maps.support),
        target=class_message(target),
    )
    setattr(message, "pass", pass_name)  # a Python keyword
    for info, raw in zip(competitors, maps.competitors, strict=True):
        message.competitors.add(competitor=class_message(info), map=map_message(raw))
    return message


def fix_message(explanation: Explanation) -> explainer_pb2.FixResult:
    fix = explanation.fix
    height, width = fix.mask.shape
    message = explainer_pb2.FixResult(
        applied=fix.image is not None,
        fraction=float(fix.mask.mean()),
        mask=image_pb2.RawMask(
            width=width, height=height, data=(fix.mask.astype(np.uint8) * 255).tobytes()
        ),
        backend=fix.engine,
    )
    if fix.image is not None:
        message.image.CopyFrom(
            image_pb2.RawImage(width=width, height=height, rgb=fix.image.tobytes())
        )
        message.target.CopyFrom(class_message(fix.target))
        message.top1.CopyFrom(class_message(fix.top1))
    return message


def faithfulness_message(score) -> explainer_pb2.Faithfulness:
    from services.explainer.faithfulness import CURVE_FRACTIONS, auc

    message = explainer_pb2.Faithfulness(
        target_id=score.target_id, p_target=score.p_target, curve_fractions=CURVE_FRACTIONS
    )
    for method, rows in score.removal.items():
        message.removal.add(
            method=method,
            steps=[
                explainer_pb2.RemovalStep(
                    fraction=r.fraction,
                    p_target=r.p_target,
                    rise=r.rise,
                    top1_is_target=r.top1_is_target,
                )
                for r in rows
            ],
        )
    for method, curve in score.deletion.items():
        message.deletion.add(method=method, p_target=curve, auc=auc(curve))
    for method, curve in score.insertion.items():
        message.insertion.add(method=method, p_target=curve, auc=auc(curve))
    return message


def result_message(explanation: Explanation, served_by: str) -> explainer_pb2.ExplainResult:
    windows = explanation.grid
    message = explainer_pb2.ExplainResult(
        target=class_message(explanation.target),
        top=[class_message(c) for c in explanation.top],
        maps=maps_message(
            "full", windows.count, explanation.maps, explanation.target, explanation.competitors
        ),
        window=windows.window,
        stride=windows.stride,
        width=windows.width,
        height=windows.height,
        work_width=explanation.work_size[0],
        work_height=explanation.work_size[1],
        backend=explanation.engine,
        fallback=explanation.fallback,
        backends_used=[
            explainer_pb2.BackendUse(engine=engine, windows=count)
            for engine, count in explanation.backends_used()
        ],
        model=explanation.model,
        incremental=explanation.incremental,
        classify_calls=explanation.classify_calls,
        laplace_n=core.LAPLACE_N,
        laplace_k=explanation.num_classes,
        served_by=served_by,
    )
    if explanation.fix is not None:
        message.fix.CopyFrom(fix_message(explanation))
    if explanation.faithfulness is not None:
        message.faithfulness.CopyFrom(faithfulness_message(explanation.faithfulness))
    message.timing_ms.update({k: float(v) for k, v in explanation.timing_ms.items()})
    return message


def event_message(event: Event, served_by: str) -> explainer_pb2.ExplainEvent:
    if isinstance(event, Progress):
        return explainer_pb2.ExplainEvent(
            progress=explainer_pb2.Progress(done=event.done, total=event.total)
        )
    if isinstance(event, Preview):
        return explainer_pb2.ExplainEvent(
            preview=maps_message(
                "coarse", event.windows, event.maps, event.target, event.competitors
            )
        )
    if isinstance(event, Finished):
        return explainer_pb2.ExplainEvent(result=result_message(event.explanation, served_by))
    raise TypeError(f"not an explanation event: {event!r}")


# -- the service -------------------------------------------------------------------


class ExplainerServicer(explainer_pb2_grpc.ExplainerServicer):
    def __init__(self, deps: Dependencies, config: ExplainerConfig) -> None:
        self.deps = deps
        self.config = config
        self.served_by = replica_name()
        self._slots = threading.BoundedSemaphore(config.max_concurrent)

    def Explain(
        self, request: explainer_pb2.ExplainRequest, context: grpc.ServicerContext
    ) -> Iterator[explainer_pb2.ExplainEvent]:
        rgb = decode_image(request.image, self.config.image_limits, what="image")
        options = options_from(request)
        if not self._slots.acquire(blocking=False):
            raise Busy(
                f"{self.config.max_concurrent} explanations are already running in this "
                "explainer; try again when one has finished"
            )
        scope = CancelScope()
        try:
            context.add_callback(scope.cancel)  # the caller left, or its deadline passed
            remaining = context.time_remaining()
            deadline = Deadline.after(
                min(self.config.timeout_s, math.inf if remaining is None else remaining)
            )
            explainer = Explainer(
                self.deps,
                self.config.limits,
                self.config.pipeline,
                metadata=(("x-request-id", request_id_var.get()),),
            )
            for event in explainer.explain(rgb, options, scope, deadline):
                yield event_message(event, self.served_by)
        except Cancelled as exc:
            if context.is_active():  # not the caller: say it stopped, don't pretend success
                raise Unavailable(f"the explanation was cancelled: {exc}") from exc
            EXPLANATIONS_CANCELLED.inc()
            log.info("explanation cancelled: the caller went away")
        except GeneratorExit:
            EXPLANATIONS_CANCELLED.inc()
            log.info("explanation cancelled: the caller went away")
            raise
        finally:
            scope.cancel()  # whatever still runs for this explanation stops
            self._slots.release()


def register(servicer: ExplainerServicer):
    def add(server: grpc.Server) -> None:
        explainer_pb2_grpc.add_ExplainerServicer_to_server(servicer, server)

    return add
