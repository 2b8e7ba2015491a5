"""The classify half of /classify and /edit: which models, the Classify calls, the answer.

- `read_models()`: the `model` and `compare` parts, resolved against the
  classifier's list (404 naming the models that exist, 503 for one listed as
  unavailable, 400 for comparing a model with itself).
- `read_params(choice)`: top_k, classes, cam and cam_size, checked against the
  model (400 for CAMs of a model without them, saying why) and, when
  comparing, against the second model too (class ids must be its class ids).
- `classify_models(image, params, choice)`: one Classify per model; the
  comparison's runs on a standing thread while the request's own thread runs
  the first, so both models work at once.
- `classification_fields(...)`: the JSON of API.md, CAMs with `width`/`height`
  (the request image's size), `map_width`/`map_height` (the PNG's) and, for a
  model that crops, `seen` (the box it saw, in PNG pixels) and an alpha channel
  that is transparent where it did not look.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

import numpy as np

from gateway.clients import clients, require_model_info
from gateway.errors import bad_request
from gateway.fields import CAM, CLASSES, COMPARE, MODEL
from gateway.forms import ClassifyParams, parse_classify_params
from ic.v1 import classifier_pb2


@dataclass(frozen=True)
class ModelChoice:
    model: classifier_pb2.ModelInfo
    compare: classifier_pb2.ModelInfo | None = None


@dataclass
class Classifications:
    reply: classifier_pb2.ClassifyResponse
    compare: classifier_pb2.ClassifyResponse | None
    # How long each model's call took (the compare one ran at the same time).
    classify_ms: float
    compare_ms: float


def read_models() -> ModelChoice:
    model = require_model_info(MODEL.text())
    compare_name = COMPARE.text()
    if compare_name is None:
        return ModelChoice(model)
    compare = require_model_info(compare_name)
    if compare.name == model.name:
        raise bad_request(f"compare={compare.name!r} is the model itself: name another model")
    return ModelChoice(model, compare)


def read_params(choice: ModelChoice) -> ClassifyParams:
    model, compare = choice.model, choice.compare
    params = parse_classify_params(model.num_classes)
    if params.wants_cams and not model.cam:
        raise bad_request(
            f"model {model.name!r} has no class activation maps ({model.cam_reason}); "
            "ask with cam=none"
        )
    if compare is not None:
        for part, ids in ((CLASSES.name, params.pinned), (CAM.name, params.cam_ids)):
            outside = [class_id for class_id in ids if class_id >= compare.num_classes]
            if outside:
                raise bad_request(
                    f"{part}: class id {outside[0]} is not a class of the compare model "
                    f"{compare.name!r} (its class ids are 0..{compare.num_classes - 1})"
                )
    return params


def classify_request(image, params: ClassifyParams, model: classifier_pb2.ModelInfo, edit=None):
    """One model's Classify of `image`, or, with `edit` (a filled hole), its
    ClassifyEdits of `image` with that edit: the classifier pastes it, so a large
    photo travels as its file and the hole's pixels. A model without CAMs (only
    ever the compare one) gets none asked."""
    cams = model.cam
    fields = {
        "top_k": min(params.top_k, model.num_classes),
        "pinned_class_ids": params.pinned,
        "cam_class_ids": params.cam_ids if cams else [],
        "cam_top_k": params.cam_top_k and cams,
        "model": model.name,
        "cam_max_side": params.cam_max_side,
    }
    if edit is None:
        return classifier_pb2.ClassifyRequest(images=[image], **fields)
    return classifier_pb2.ClassifyEditsRequest(base=image, edits=[edit], **fields)


def _timed_classify(classifier, request):
    started = time.perf_counter()
    if isinstance(request, classifier_pb2.ClassifyEditsRequest):
        reply = classifier.classify_edits(request)
    else:
        reply = classifier.classify(request)
    return reply, (time.perf_counter() - started) * 1e3


def classify_models(
    image, params: ClassifyParams, choice: ModelChoice, edit=None
) -> Classifications:
    """Both models' Classify at once (or the one model's), on the same image
    (with `edit` applied: see classify_request)."""
    current = clients()
    classifier = current.classifier
    pending = None
    if choice.compare is not None:
        # The request's context (its id, for the services' logs) goes along.
        context = contextvars.copy_context()
        request = classify_request(image, params, choice.compare, edit)
        pending = current.parallel_calls.submit(context.run, _timed_classify, classifier, request)
    try:
        request = classify_request(image, params, choice.model, edit)
        reply, classify_ms = _timed_classify(classifier, request)
    finally:
        # Always collected, so an error of the first call never leaves the second running.
        compare, compare_ms = pending.result() if pending is not None else (None, 0.0)
    return Classifications(reply, compare, classify_ms, compare_ms)


def cam_fields(cam: classifier_pb2.ClassActivationMap, encode) -> dict:
    gray = np.frombuffer(cam.data, dtype=np.uint8).reshape(cam.height, cam.width)
    fields = {
        "class_id": cam.class_id,
        # The request image's size (the map covers it), as API.md has always said.
        "width": cam.image_width or cam.width,
        "height": cam.image_height or cam.height,
        "map_width": cam.width,
        "map_height": cam.height,
        "raw_min": cam.raw_min,
        "raw_max": cam.raw_max,
    }
    covers = fields["width"] * fields["height"]
    if cam.HasField("seen"):
        seen = cam.seen
        alpha = np.zeros_like(gray)
        alpha[seen.y : seen.y + seen.height, seen.x : seen.x + seen.width] = 255
        fields["png"] = encode(np.dstack([gray, alpha]), covers=covers)
        fields["seen"] = {"x": seen.x, "y": seen.y, "width": seen.width, "height": seen.height}
    else:
        fields["png"] = encode(gray, covers=covers)
    return fields


def classification_fields(
    reply: classifier_pb2.ClassifyResponse, encode, model: classifier_pb2.ModelInfo | None = None
) -> dict:
    """The classify fields of API.md from a one-image ClassifyResponse; `encode` makes
    a base64 PNG of an array. With `model` (a compare model without CAMs), why there are none."""
    result = reply.results[0]

    def score(item) -> dict:
        return {
            "class_id": item.class_id,
            "label": item.label,
            "probability": item.probability,
            "rank": item.rank,
        }

    fields = {
        "model": reply.model,
        "predictions": [score(item) for item in result.top],
        "pinned": [score(item) for item in result.pinned],
        "cams": [cam_fields(cam, encode) for cam in result.cams],
    }
    if model is not None and not model.cam:
        fields["cam_reason"] = model.cam_reason
    return fields


def answer_fields(done: Classifications, choice: ModelChoice, encode) -> dict:
    """classification_fields of the model, and of the compare model under `compare`."""
    fields = classification_fields(done.reply, encode)
    if done.compare is not None:
        compare = classification_fields(done.compare, encode, choice.compare)
        compare["served_by"] = done.compare.served_by
        fields["compare"] = compare
    return fields
