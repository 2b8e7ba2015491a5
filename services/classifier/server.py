"""The thin gRPC adapter of the classifier core (proto/ic/v1/classifier.proto)."""

from __future__ import annotations

import threading
import time

import grpc

from common.config import replica_name
from common.images import decode_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc
from services.classifier.core import ClassScore, ImageClassification, SqueezeNetClassifier
from services.classifier.edits import edit_from_bytes
from services.classifier.preprocess import SHORT_SIDE

DEFAULT_TOP_K = 5
SERVICE_NAME = classifier_pb2.DESCRIPTOR.services_by_name["Classifier"].full_name


def _probability_message(score: ClassScore) -> classifier_pb2.ClassProbability:
    return classifier_pb2.ClassProbability(
        class_id=score.class_id, label=score.label, probability=score.probability, rank=score.rank
    )


def _fill_result(message: classifier_pb2.ImageResult, result: ImageClassification) -> None:
    message.top.extend(_probability_message(s) for s in result.top)
    message.pinned.extend(_probability_message(s) for s in result.pinned)
    for cam in result.cams:
        height, width = cam.image.shape
        message.cams.add(
            class_id=cam.class_id,
            width=width,
            height=height,
            data=cam.image.tobytes(),
            raw_min=cam.raw_min,
            raw_max=cam.raw_max,
            image_width=width,
            image_height=height,
        )
    if result.probabilities is not None:
        message.probabilities.extend(result.probabilities.tolist())


class ClassifierServicer(classifier_pb2_grpc.ClassifierServicer):
    """Registered before the model is loaded (so health can answer NOT_SERVING
    meanwhile); `attach` hands it the loaded core. Calls that arrive before
    that wait for it within their deadline, then get UNAVAILABLE."""

    def __init__(self, classifier: SqueezeNetClassifier | None = None) -> None:
        self.replica = replica_name()
        self._loaded = threading.Event()
        if classifier is not None:
            self.attach(classifier)

    def attach(self, classifier: SqueezeNetClassifier) -> None:
        self.classifier = classifier
        self._loaded.set()

    def _wait_for_model(self, context: grpc.ServicerContext) -> None:
        remaining = context.time_remaining()
        timeout = 30.0 if remaining is None else max(0.0, remaining - 0.05)
        if not self._loaded.wait(timeout):
            context.abort(grpc.StatusCode.UNAVAILABLE, "the model is still loading")

    def Classify(self, request: classifier_pb2.ClassifyRequest, context: grpc.ServicerContext):
        self._wait_for_model(context)
        started = time.perf_counter()
        limits = self.classifier.limits
        images = [
            decode_image(msg, limits, what=f"image {i}") for i, msg in enumerate(request.images)
        ]
        decode_ms = (time.perf_counter() - started) * 1e3
        batch = self.classifier.classify(
            images,
            top_k=request.top_k or DEFAULT_TOP_K,
            pinned_class_ids=list(request.pinned_class_ids),
            cam_class_ids=list(request.cam_class_ids),
            cam_top_k=request.cam_top_k,
            all_probabilities=request.all_probabilities,
        )
        response = classifier_pb2.ClassifyResponse(
            model=self.classifier.name, served_by=self.replica
        )
        for result in batch.results:
            _fill_result(response.results.add(), result)
        response.timing_ms["decode"] = decode_ms
        response.timing_ms.update(batch.timing_ms)
        response.timing_ms["total"] = (time.perf_counter() - started) * 1e3
        return response

    def ClassifyEdits(
        self, request: classifier_pb2.ClassifyEditsRequest, context: grpc.ServicerContext
    ) -> classifier_pb2.ClassifyEditsResponse:
        self._wait_for_model(context)
        started = time.perf_counter()
        base = decode_image(request.base, self.classifier.limits, what="base image")
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
        answer = self.classifier.classify_edits(
            base,
            edits,
            top_k=request.top_k or DEFAULT_TOP_K,
            pinned_class_ids=list(request.pinned_class_ids),
            all_probabilities=request.all_probabilities,
            include_base=request.include_base,
        )
        response = classifier_pb2.ClassifyEditsResponse(
            model=self.classifier.name, served_by=self.replica, incremental=answer.incremental
        )
        if answer.base is not None:
            _fill_result(response.base, answer.base)
        for result in answer.results:
            _fill_result(response.results.add(), result)
        response.timing_ms["decode"] = decode_ms
        response.timing_ms.update(answer.timing_ms)
        response.timing_ms["total"] = (time.perf_counter() - started) * 1e3
        return response

    def GetModelInfo(self, request, context: grpc.ServicerContext) -> classifier_pb2.ModelInfo:
        self._wait_for_model(context)
        classifier = self.classifier
        return classifier_pb2.ModelInfo(
            name=classifier.name,
            labels=classifier.labels,
            num_classes=classifier.num_classes,
            input_short_side=SHORT_SIDE,
            train_height=224,
            train_width=224,
            cam=True,
            max_batch=classifier.max_batch,
            max_side=classifier.limits.max_side,
            max_pixels=classifier.limits.max_pixels,
            served_by=self.replica,
            title="SqueezeNet 1.1 (ImageNet-1k)",
            default=True,
            available=True,
            incremental=False,
            incremental_reason="every edited image runs through the whole network",
            max_edits=classifier.max_edits,
        )
