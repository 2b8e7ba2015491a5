"""The endpoints of API.md under /api/v1 (explain lives in gateway/explain/)."""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, current_app, send_from_directory

from common.config import replica_name
from common.errors import InvalidInput
from common.images import decode_image, encode_png, raw_image, raw_mask
from gateway import __version__
from gateway.clients import call_metadata, clients, require_model_info
from gateway.errors import ApiError, not_found
from gateway.forms import (
    ClassifyParams,
    parse_backend,
    parse_classify_params,
    read_image,
    read_mask,
    require_multipart,
)
from gateway.gallery import list_gallery
from gateway.jsonbody import Base64, json_response
from gateway.observability import BACKEND_FALLBACKS
from gateway.png import encode_png_fast, png_level
from ic.v1 import classifier_pb2, inpainter_pb2

api = Blueprint("api", __name__, url_prefix="/api/v1")


def b64_png(array: np.ndarray, setting: str | None = None) -> Base64:
    """A PNG for a JSON answer (json_response), compressed as configured
    (IC_PNG_COMPRESSION: by the picture's size unless a level is forced)."""
    if setting is None:
        setting = current_app.config["IC"].png_compression
    level = png_level(setting, array.shape[0] * array.shape[1])
    return Base64(encode_png_fast(array, level))


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1e3, 2)


def timed(function, *args):
    """(function(*args), its duration in ms)."""
    started = time.perf_counter()
    result = function(*args)
    return result, (time.perf_counter() - started) * 1e3


# -- discovery ---------------------------------------------------------------


@api.get("/info")
def info():
    config = current_app.config["IC"]
    model = require_model_info()
    current = clients()
    registry = current.backends
    default = registry.default_name()
    return {
        "version": __version__,
        "model": {
            "name": model.name,
            "input_size": [model.train_height, model.train_width],
            "input_short_side": model.input_short_side,
            "num_classes": model.num_classes,
            "cam": model.cam,
        },
        "backends": [
            {
                "name": engine.name,
                "available": engine.available,
                "default": engine.name == default,
                "description": engine.description,
                "service": engine.service,
                "unavailable_reason": engine.unavailable_reason,
                "randomized": engine.randomized,
                "params": list(engine.params),
            }
            for engine in registry.engines()
        ],
        "explain": explain_availability(current.explainer),
        "limits": {
            "max_upload_bytes": config.max_upload_bytes,
            "max_pixels": config.max_pixels,
            "max_side": config.max_side,
            "max_top_k": model.num_classes,
            "max_cams": config.max_cams,
        },
        "served_by": {"gateway": replica_name(), "classifier": model.served_by},
    }


def explain_availability(explainer) -> dict:
    """Whether /api/v1/explain can work now: the explainer's health (the page
    disables its Explain panel with the reason when it cannot)."""
    serving, status = explainer.health()
    if serving:
        return {"available": True, "reason": ""}
    return {
        "available": False,
        "reason": f"the explainer service is unavailable ({explainer.target}: {status})",
    }


@api.get("/labels")
def labels():
    return {"labels": list(require_model_info().labels)}


@api.get("/gallery")
def gallery():
    photos = list_gallery(current_app.config["IC"].gallery_dir)
    return {
        "images": [
            {
                "id": photo.id,
                "title": photo.title,
                "url": f"/api/v1/gallery/{photo.file}",
                "credit": photo.credit,
            }
            for photo in photos
        ]
    }


@api.get("/gallery/<path:filename>")
def gallery_photo(filename: str):
    photos = {photo.file for photo in list_gallery(current_app.config["IC"].gallery_dir)}
    if filename not in photos:
        raise not_found(f"no gallery photo {filename!r}")
    response = send_from_directory(current_app.config["IC"].gallery_dir, filename, max_age=3600)
    return response


@api.get("/examples/stroke-<int:width>x<int:height>.png")
def example_stroke_mask(width: int, height: int):
    """A brush stroke mask of any size, so every example request of the
    OpenAPI document can be sent as it is (curl -F mask=@stroke.png)."""
    current_app.config["IC"].image_limits.check(width, height, what="mask")
    rows, cols = np.mgrid[0:height, 0:width]
    # A 15 px diagonal stroke across the middle, like a quick brush movement.
    distance = np.abs((rows - height / 2) - 0.5 * (cols - width / 2)) / np.sqrt(1.25)
    inside = (distance <= 7.5) & (np.abs(cols - width / 2) <= width / 4)
    mask = inside.astype(np.uint8) * 255
    response = current_app.response_class(encode_png(mask), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# -- classify, inpaint, edit -------------------------------------------------


def classification_fields(reply: classifier_pb2.ClassifyResponse) -> dict:
    """The classify fields of API.md from a one-image ClassifyResponse."""
    result = reply.results[0]

    def score(item) -> dict:
        return {
            "class_id": item.class_id,
            "label": item.label,
            "probability": item.probability,
            "rank": item.rank,
        }

    cams = []
    for cam in result.cams:
        gray = np.frombuffer(cam.data, dtype=np.uint8).reshape(cam.height, cam.width)
        cams.append(
            {
                "class_id": cam.class_id,
                "width": cam.width,
                "height": cam.height,
                "png": b64_png(gray),
                "raw_min": cam.raw_min,
                "raw_max": cam.raw_max,
            }
        )
    return {
        "model": reply.model,
        "predictions": [score(item) for item in result.top],
        "pinned": [score(item) for item in result.pinned],
        "cams": cams,
    }


def classify_request(image, params: ClassifyParams) -> classifier_pb2.ClassifyRequest:
    return classifier_pb2.ClassifyRequest(
        images=[image],
        top_k=params.top_k,
        pinned_class_ids=params.pinned,
        cam_class_ids=params.cam_ids,
        cam_top_k=params.cam_top_k,
    )


def inpaint(rgb: np.ndarray, mask: np.ndarray, backend: str | None):
    """Inpaint on the requested backend or a fallback -> (InpaintOutcome, timing)."""
    config = current_app.config["IC"]
    request = inpainter_pb2.InpaintRequest(image=raw_image(rgb), mask=raw_mask(mask))
    metadata = call_metadata()

    def attempt(stub, engine: str):
        request.engine = engine
        return stub.Inpaint(request, timeout=config.inpaint_timeout_s, metadata=metadata)

    outcome = clients().backends.call(backend, attempt)
    if outcome.fallback:
        BACKEND_FALLBACKS.labels(backend or "default", outcome.engine).inc()
    return outcome


def inpainted_rgb(message) -> np.ndarray:
    """The service's answer as an array (raw by contract; encoded accepted)."""
    try:
        return decode_image(message, current_app.config["IC"].image_limits, what="inpainted image")
    except InvalidInput as exc:
        raise ApiError(502, "bad_gateway", f"the inpainting service answered: {exc}") from exc


@api.post("/classify")
def classify():
    started = time.perf_counter()
    require_multipart()
    num_classes = require_model_info().num_classes
    rgb = read_image()
    params = parse_classify_params(num_classes)
    decoded = time.perf_counter()
    classifier = clients().classifier
    reply = classifier.classify(classify_request(raw_image(rgb), params))
    classified = time.perf_counter()
    body = classification_fields(reply)
    body["timing_ms"] = {
        "decode": round((decoded - started) * 1e3, 2),
        "classify": round((classified - decoded) * 1e3, 2),
        "encode": elapsed_ms(classified),
        "total": elapsed_ms(started),
        **{f"classifier_{k}": round(v, 2) for k, v in reply.timing_ms.items()},
    }
    body["served_by"] = {"gateway": replica_name(), "classifier": reply.served_by}
    return json_response(body)


@api.post("/inpaint")
def inpaint_endpoint():
    started = time.perf_counter()
    require_multipart()
    rgb = read_image()
    mask = read_mask(rgb.shape[1], rgb.shape[0])
    backend = parse_backend()
    decoded = time.perf_counter()
    outcome = inpaint(rgb, mask, backend)
    inpainted = time.perf_counter()
    png = b64_png(inpainted_rgb(outcome.response.image))
    return json_response(
        {
            "image": png,
            "backend": outcome.engine,
            "fallback": outcome.fallback,
            "width": rgb.shape[1],
            "height": rgb.shape[0],
            "removed_pixels": int(np.count_nonzero(mask)),
            "timing_ms": {
                "decode": round((decoded - started) * 1e3, 2),
                "inpaint": round((inpainted - decoded) * 1e3, 2),
                "inpainter_engine": round(outcome.response.elapsed_ms, 2),
                "encode": elapsed_ms(inpainted),
                "total": elapsed_ms(started),
            },
            "served_by": {"gateway": replica_name(), "inpainter": outcome.response.served_by},
        }
    )


@api.post("/edit")
def edit():
    """The hot path of a brush stroke: decode once, inpaint with raw pixels,
    then one Classify call (top-k, pinned and CAMs) while the PNG is encoded."""
    started = time.perf_counter()
    require_multipart()
    num_classes = require_model_info().num_classes
    rgb = read_image()
    mask = read_mask(rgb.shape[1], rgb.shape[0])
    params = parse_classify_params(num_classes)
    backend = parse_backend()
    decoded = time.perf_counter()

    outcome = inpaint(rgb, mask, backend)
    inpainted = time.perf_counter()
    result_image = outcome.response.image
    # The picture for the browser is encoded on a side thread while this one
    # waits on the classifier.
    result_rgb = inpainted_rgb(result_image)
    current = clients()
    png_future = current.side_work.submit(
        timed, b64_png, result_rgb, current_app.config["IC"].png_compression
    )
    try:
        reply = current.classifier.classify(classify_request(result_image, params))
    finally:
        png, encode_image_ms = png_future.result()
    classified = time.perf_counter()

    body = {
        "image": png,
        "backend": outcome.engine,
        "fallback": outcome.fallback,
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "removed_pixels": int(np.count_nonzero(mask)),
        **classification_fields(reply),
    }
    body["timing_ms"] = {
        "decode": round((decoded - started) * 1e3, 2),
        "inpaint": round((inpainted - decoded) * 1e3, 2),
        "inpainter_engine": round(outcome.response.elapsed_ms, 2),
        "encode_image": round(encode_image_ms, 2),
        "classify": round((classified - inpainted) * 1e3, 2),
        "encode_cams": elapsed_ms(classified),
        "total": elapsed_ms(started),
        **{f"classifier_{k}": round(v, 2) for k, v in reply.timing_ms.items()},
    }
    body["served_by"] = {
        "gateway": replica_name(),
        "inpainter": outcome.response.served_by,
        "classifier": reply.served_by,
    }
    return json_response(body)
