"""The thin gRPC adapter of the classifier core (proto/ic/v1/classifier.proto).

Each request names a model (empty: the default); the registry answers with the
loaded model, NOT_FOUND naming the models that exist, or FAILED_PRECONDITION
with the reason a listed model could not be loaded.
"""

from __future__ import annotations

import threading
import time

import grpc
from prometheus_client import Counter

from common.config import replica_name
from common.images import decode_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, image_pb2
from services.classifier.cards import InputSpec, ModelCard
from services.classifier.core import ClassifierModel, ClassScore, ImageClassification
from services.classifier.edits import edit_from_bytes
from services.classifier.registry import ModelRegistry, UnavailableModel

DEFAULT_TOP_K = 5
SERVICE_NAME = classifier_pb2.DESCRIPTOR.services_by_name["Classifier"].full_name

EDITS_COMPUTED = Counter(
    "ic_classifier_edits_total",
    "Edited images classified by ClassifyEdits, by model and how: incremental or full.",
    ["model", "mode"],
)
EDIT_BASES = Counter(
    "ic_classifier_edit_bases_total",
    "Base images of incremental ClassifyEdits calls: activations computed, or reused from "
    "the cache (IC_INCREMENTAL_CACHE_MB).",
    ["model", "source"],
)


def _probability_message(score: ClassScore) -> classifier_pb2.ClassProbability:
    return classifier_pb2.ClassProbability(
        class_id=score.class_id, label=score.label, probability=score.probability, rank=score.rank
    )


def _fill_result(message: classifier_pb2.ImageResult, result: ImageClassification) -> None:
    message.top.extend(_probability_message(s) for s in result.top)
    message.pinned.extend(_probability_message(s) for s in result.pinned)
    for cam in result.cams:
        height, width = cam.image.shape
        entry = message.cams.add(
            class_id=cam.class_id,
            width=width,
            height=height,
            data=cam.image.tobytes(),
            raw_min=cam.raw_min,
            raw_max=cam.raw_max,
            image_width=cam.image_width,
            image_height=cam.image_height,
        )
        if cam.seen is not None:
            x, y, seen_width, seen_height = cam.seen
            entry.seen.CopyFrom(image_pb2.MaskRect(x=x, y=y, width=seen_width, height=seen_height))
    if result.probabilities is not None:
        message.probabilities.extend(result.probabilities.tolist())


def input_message(spec: InputSpec) -> classifier_pb2.ModelInput:
    message = classifier_pb2.ModelInput(
        layout=spec.layout,
        color=spec.color,
        scale=spec.scale,
        mean=list(spec.mean),
        std=list(spec.std),
    )
    if spec.size:
        message.height, message.width = spec.size
    else:
        message.short_side = spec.short_side or 0
    if spec.crop:
        message.crop_height, message.crop_width = spec.crop
    return message


def _card_fields(card: ModelCard) -> dict:
    spec = card.input
    fixed = spec.fixed_size
    return {
        "title": card.title,
        "licence": card.licence,
        "outputs": card.outputs,
        "input": input_message(spec),
        "input_short_side": spec.short_side or (min(fixed) if fixed else 0),
        "train_height": spec.trained_at[0],
        "train_width": spec.trained_at[1],
    }


class ClassifierServicer(classifier_pb2_grpc.ClassifierServicer):
    """Registered before the models are loaded (so health can answer NOT_SERVING
    meanwhile); `attach` hands it the registry. Calls that arrive before that
    wait for it within their deadline, then get UNAVAILABLE."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        self.replica = replica_name()
        self._loaded = threading.Event()
        if registry is not None:
            self.attach(registry)

    def attach(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loaded.set()

    def _wait_for_models(self, context: grpc.ServicerContext) -> None:
        remaining = context.time_remaining()
        timeout = 30.0 if remaining is None else max(0.0, remaining - 0.05)
        if not self._loaded.wait(timeout):
            context.abort(grpc.StatusCode.UNAVAILABLE, "the models are still loading")

    def Classify(self, request: classifier_pb2.ClassifyRequest, context: grpc.ServicerContext):
        self._wait_for_models(context)
        model = self.registry.get(request.model)
        started = time.perf_counter()
        images = [
            decode_image(msg, model.limits, what=f"image {i}")
            for i, msg in enumerate(request.images)
        ]
        decode_ms = (time.perf_counter() - started) * 1e3
        batch = model.classify(
            images,
            top_k=request.top_k or min(DEFAULT_TOP_K, model.num_classes),
            pinned_class_ids=list(request.pinned_class_ids),
            cam_class_ids=list(request.cam_class_ids),
            cam_top_k=request.cam_top_k,
            all_probabilities=request.all_probabilities,
            cam_max_side=request.cam_max_side,
        )
        response = classifier_pb2.ClassifyResponse(model=model.name, served_by=self.replica)
        for result in batch.results:
            _fill_result(response.results.add(), result)
        response.timing_ms["decode"] = decode_ms
        response.timing_ms.update(batch.timing_ms)
        response.timing_ms["total"] = (time.perf_counter() - started) * 1e3
        return response

    def ClassifyEdits(
        self, request: classifier_pb2.ClassifyEditsRequest, context: grpc.ServicerContext
    ) -> classifier_pb2.ClassifyEditsResponse:
        self._wait_for_models(context)
        model = self.registry.get(request.model)
        started = time.perf_counter()
        base = decode_image(request.base, model.limits, what="base image")
        height, width = base.shape[:2]
        edits = [
            edit_from_bytes(
                index,
                edit.rect.x,
                edit.rect.y,
                edit.rect.width,
                edit.rect.height,
                edit.rgb,
                width,
                height,
            )
            for index, edit in enumerate(request.edits)
        ]
        decode_ms = (time.perf_counter() - started) * 1e3
        answer = model.classify_edits(
            base,
            edits,
            top_k=request.top_k or min(DEFAULT_TOP_K, model.num_classes),
            pinned_class_ids=list(request.pinned_class_ids),
            all_probabilities=request.all_probabilities,
            include_base=request.include_base,
        )
        mode = "incremental" if answer.incremental else "full"
        EDITS_COMPUTED.labels(model.name, mode).inc(len(answer.results))
        if answer.incremental:
            EDIT_BASES.labels(model.name, "cache" if answer.base_cached else "computed").inc()
        response = classifier_pb2.ClassifyEditsResponse(
            model=model.name, served_by=self.replica, incremental=answer.incremental
        )
        if answer.base is not None:
            _fill_result(response.base, answer.base)
        for result in answer.results:
            _fill_result(response.results.add(), result)
        response.timing_ms["decode"] = decode_ms
        response.timing_ms.update(answer.timing_ms)
        response.timing_ms["total"] = (time.perf_counter() - started) * 1e3
        return response

    def model_info(self, name: str, with_labels: bool) -> classifier_pb2.ModelInfo:
        """What GetModelInfo and ListModels say of one model, served or not."""
        registry = self.registry
        name = name or registry.default_name
        model = registry.models.get(name)
        if model is None:
            entry = registry.unavailable.get(name)
            if entry is None:
                registry.get(name)  # raises NotFound naming the models that exist
            return self._unavailable_info(entry)
        return self._served_info(model, with_labels)

    def _served_info(self, model: ClassifierModel, with_labels: bool) -> classifier_pb2.ModelInfo:
        return classifier_pb2.ModelInfo(
            name=model.name,
            labels=model.labels if with_labels else [],
            num_classes=model.num_classes,
            cam=model.cam,
            cam_reason=model.cam_reason,
            max_batch=model.max_batch,
            max_side=model.limits.max_side,
            max_pixels=model.limits.max_pixels,
            served_by=self.replica,
            default=model.name == self.registry.default_name,
            available=True,
            incremental=model.incremental,
            incremental_reason="" if model.incremental else model.incremental_reason,
            max_edits=model.max_edits,
            **_card_fields(model.card),
        )

    def _unavailable_info(self, entry: UnavailableModel) -> classifier_pb2.ModelInfo:
        info = classifier_pb2.ModelInfo(
            name=entry.name,
            served_by=self.replica,
            available=False,
            unavailable_reason=entry.reason,
            cam_reason="the model is unavailable",
        )
        if entry.card is not None:
            info.MergeFrom(classifier_pb2.ModelInfo(**_card_fields(entry.card)))
        return info

    def GetModelInfo(self, request, context: grpc.ServicerContext) -> classifier_pb2.ModelInfo:
        self._wait_for_models(context)
        return self.model_info(request.model, with_labels=True)

    def ListModels(self, request, context: grpc.ServicerContext) -> classifier_pb2.ModelList:
        self._wait_for_models(context)
        return classifier_pb2.ModelList(
            models=[self.model_info(name, with_labels=False) for name in self.registry.order],
            default_model=self.registry.default_name,
        )
