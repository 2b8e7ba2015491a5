"""The endpoints of API.md under /api/v1 (explain lives in gateway/explain/)."""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, current_app, request, send_from_directory

from common.config import replica_name
from common.images import encode_png, raw_image
from gateway import __version__
from gateway.classification import answer_fields, classify_models, read_models, read_params
from gateway.clients import clients, require_model_info
from gateway.errors import bad_request, not_found
from gateway.forms import (
    parse_backend,
    read_answer,
    read_image,
    read_image_and_file,
    read_mask,
    require_multipart,
)
from gateway.gallery import list_gallery
from gateway.inpainting import Inpainted, inpaint
from gateway.jsonbody import Base64, json_response
from gateway.png import encode_png_fast, png_level
from ic.v1 import classifier_pb2, image_pb2

api = Blueprint("api", __name__, url_prefix="/api/v1")

# /edit sends the classifier a photo larger than this as the file the client
# sent, smaller ones (the page's working copies) as the pixels already decoded.
SEND_FILE_ABOVE_PIXELS = 1_000_000


def b64_png(array: np.ndarray, setting: str | None = None, covers: int = 0) -> Base64:
    """A PNG for a JSON answer (json_response), compressed as configured
    (IC_PNG_COMPRESSION: by the picture's size unless a level is forced). A
    map that `covers` a larger picture (a capped CAM of a big photo) is sized
    by that picture: it belongs to an answer where bytes count more than the
    millisecond compressing costs."""
    if setting is None:
        setting = current_app.config["IC"].png_compression
    level = png_level(setting, max(covers, array.shape[0] * array.shape[1]))
    return Base64(encode_png_fast(array, level))


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1e3, 2)


def timed(function, *args):
    """(function(*args), its duration in ms)."""
    started = time.perf_counter()
    result = function(*args)
    return result, (time.perf_counter() - started) * 1e3


# -- discovery ---------------------------------------------------------------


def input_json(spec: classifier_pb2.ModelInput) -> dict:
    """A card's `input`, as the card says it."""
    fields: dict = (
        {"short_side": spec.short_side} if spec.short_side else {"size": [spec.height, spec.width]}
    )
    fields["crop"] = [spec.crop_height, spec.crop_width] if spec.crop_height else None
    fields.update(
        layout=spec.layout,
        color=spec.color,
        scale=spec.scale,
        mean=list(spec.mean),
        std=list(spec.std),
    )
    return fields


def model_json(model: classifier_pb2.ModelInfo) -> dict:
    """One entry of /api/v1/models, from the classifier's ListModels."""
    fields = {
        "name": model.name,
        "title": model.title,
        "default": model.default,
        "available": model.available,
        "num_classes": model.num_classes,
        "cam": model.cam,
        "cam_reason": model.cam_reason,
        "input": input_json(model.input) if model.HasField("input") else None,
        "input_size": [model.train_height, model.train_width],
        "outputs": model.outputs,
        "licence": model.licence,
        "incremental": model.incremental,
        "incremental_reason": model.incremental_reason,
    }
    if not model.available:
        fields["unavailable_reason"] = model.unavailable_reason
    return fields


@api.get("/models")
def models():
    listing = clients().classifier.models()
    return {
        "models": [model_json(model) for model in listing.models],
        "default": listing.default_model,
    }


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
            "title": model.title,
            "input_size": [model.train_height, model.train_width],
            "input_short_side": model.input_short_side,
            "num_classes": model.num_classes,
            "cam": model.cam,
        },
        "models": [model_json(entry) for entry in clients().classifier.models().models],
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
            "cam_max_side": config.cam_max_side,
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
    """The labels of the default model, or of `?model=NAME`."""
    name = request.args.get("model", "").strip() or None
    if name is not None and len(name) > 64:
        raise bad_request("model: a model name has at most 64 characters")
    model = require_model_info(name)
    return {"model": model.name, "labels": list(model.labels)}


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


def classifier_timing(done, prefix: str = "classifier") -> dict:
    """The classifier's own timing of each model's call."""
    timing = {f"{prefix}_{k}": round(v, 2) for k, v in done.reply.timing_ms.items()}
    if done.compare is not None:
        timing["classify_compare"] = round(done.compare_ms, 2)
        timing.update(
            {f"{prefix}_compare_{k}": round(v, 2) for k, v in done.compare.timing_ms.items()}
        )
    return timing


def classifier_replicas(done) -> dict:
    replicas = {"classifier": done.reply.served_by}
    if done.compare is not None:
        replicas["classifier_compare"] = done.compare.served_by
    return replicas


@api.post("/classify")
def classify():
    started = time.perf_counter()
    require_multipart()
    choice = read_models()
    rgb = read_image()
    params = read_params(choice)
    decoded = time.perf_counter()
    done = classify_models(raw_image(rgb), params, choice)
    classified = time.perf_counter()
    body = answer_fields(done, choice, b64_png)
    body["timing_ms"] = {
        "decode": round((decoded - started) * 1e3, 2),
        "classify": round((classified - decoded) * 1e3, 2),
        "encode": elapsed_ms(classified),
        "total": elapsed_ms(started),
        **classifier_timing(done),
    }
    body["served_by"] = {"gateway": replica_name(), **classifier_replicas(done)}
    return json_response(body)


def picture_fields(rgb: np.ndarray, done: Inpainted, answer: str, encode=None) -> dict:
    """`image` (the whole picture) or, with answer=region, `region` (the filled box)."""
    encode = encode or b64_png
    if answer == "region":
        box = done.box
        return {"region": None if box is None else {**box.json(), "png": encode(done.pixels)}}
    return {"image": encode(done.apply_to(rgb))}


@api.post("/inpaint")
def inpaint_endpoint():
    started = time.perf_counter()
    require_multipart()
    rgb = read_image()
    mask = read_mask(rgb.shape[1], rgb.shape[0])
    backend = parse_backend()
    answer = read_answer()
    decoded = time.perf_counter()
    done = inpaint(rgb, mask, backend)
    inpainted = time.perf_counter()
    return json_response(
        {
            **picture_fields(rgb, done, answer),
            "backend": done.engine,
            "fallback": done.fallback,
            "width": rgb.shape[1],
            "height": rgb.shape[0],
            "removed_pixels": int(np.count_nonzero(mask)),
            "timing_ms": {
                "decode": round((decoded - started) * 1e3, 2),
                "inpaint": round((inpainted - decoded) * 1e3, 2),
                "inpainter_engine": round(done.elapsed_ms, 2),
                "encode": elapsed_ms(inpainted),
                "total": elapsed_ms(started),
            },
            "served_by": {"gateway": replica_name(), "inpainter": done.served_by},
        }
    )


@api.post("/edit")
def edit():
    """The hot path of a brush stroke: decode once, inpaint the part round the
    hole, then one ClassifyEdits call per model (the image and the filled hole;
    top-k, pinned and CAMs; a comparison's two at once) while the picture is
    encoded. A large photo goes to the classifier as the file the client sent
    (a 1 MB JPEG, not 36 MB of pixels); the page's small copies as pixels."""
    started = time.perf_counter()
    require_multipart()
    choice = read_models()
    rgb, file = read_image_and_file()
    mask = read_mask(rgb.shape[1], rgb.shape[0])
    params = read_params(choice)
    backend = parse_backend()
    answer = read_answer()
    decoded = time.perf_counter()

    done = inpaint(rgb, mask, backend)
    inpainted = time.perf_counter()
    pixels = rgb.shape[0] * rgb.shape[1]
    base = image_pb2.Image(encoded=file) if pixels > SEND_FILE_ABOVE_PIXELS else raw_image(rgb)
    # The picture for the browser is encoded on a side thread while this one
    # waits on the classifier.
    current = clients()
    setting = current_app.config["IC"].png_compression
    picture = current.side_work.submit(
        timed, picture_fields, rgb, done, answer, lambda array: b64_png(array, setting)
    )
    try:
        classified_models = classify_models(base, params, choice, done.as_edit())
    finally:
        fields, encode_image_ms = picture.result()
    classified = time.perf_counter()

    body = {
        **fields,
        "backend": done.engine,
        "fallback": done.fallback,
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "removed_pixels": int(np.count_nonzero(mask)),
        **answer_fields(classified_models, choice, b64_png),
    }
    body["timing_ms"] = {
        "decode": round((decoded - started) * 1e3, 2),
        "inpaint": round((inpainted - decoded) * 1e3, 2),
        "inpainter_engine": round(done.elapsed_ms, 2),
        "encode_image": round(encode_image_ms, 2),
        "classify": round((classified - inpainted) * 1e3, 2),
        "encode_cams": elapsed_ms(classified),
        "total": elapsed_ms(started),
        **classifier_timing(classified_models),
    }
    body["served_by"] = {
        "gateway": replica_name(),
        "inpainter": done.served_by,
        **classifier_replicas(classified_models),
    }
    return json_response(body)
