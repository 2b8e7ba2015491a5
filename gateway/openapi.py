"""The OpenAPI 3 document of the whole HTTP API, served at /api/v1/openapi.json.

The document is built from parts: this module adds the core endpoints, and any
blueprint that adds endpoints (gateway/explain/) adds its own paths and
schemas when it registers:

    from gateway.openapi import openapi_document
    openapi_document(app).add_path("/api/v1/explain", {"post": {...}})
    openapi_document(app).add_schemas({"ExplainResult": {...}})

Every operation carries examples that can be sent as they are: in a multipart
example, a file part written `@/some/path` is the file the gateway serves at
that path (a gallery photo, or a generated brush-stroke mask).
"""

from __future__ import annotations

import copy

from flask import Blueprint, Flask, current_app

from gateway import __version__
from gateway.fields import (
    CLASSIFY_PARTS,
    EDIT_PARTS,
    INPAINT_PARTS,
    SEGMENT_PARTS,
    Part,
    multipart_schema,
)
from gateway.openapi_schemas import SCHEMAS, ref

EXTENSION_KEY = "ic_openapi"
EXAMPLE_PHOTO = "@/api/v1/gallery/soccer.jpg"
EXAMPLE_MASK = "@/api/v1/examples/stroke-227x227.png"


class OpenApiDocument:
    def __init__(self) -> None:
        self.paths: dict[str, dict] = {}
        self.schemas: dict[str, dict] = {}

    def add_path(self, path: str, item: dict) -> None:
        self.paths.setdefault(path, {}).update(item)

    def add_schemas(self, schemas: dict[str, dict]) -> None:
        self.schemas.update(schemas)

    def document(self) -> dict:
        return {
            "openapi": "3.0.3",
            "info": {
                "title": "Interactive Classification API",
                "version": __version__,
                "description": (
                    "Brush over a photo, remove the region by inpainting, and see how an "
                    "ImageNet classifier's top classes, confidences and class activation "
                    "maps change. Requests with images are multipart/form-data; answers are "
                    "JSON; images inside JSON are base64 PNG. In the examples, a file part "
                    "written `@/path` is the file this gateway serves at that path."
                ),
                "license": {"name": "MIT"},
            },
            "paths": copy.deepcopy(self.paths),
            "components": {"schemas": copy.deepcopy(self.schemas)},
        }


def openapi_document(app: Flask | None = None) -> OpenApiDocument:
    target = app or current_app
    return target.extensions.setdefault(EXTENSION_KEY, OpenApiDocument())


def json_answer(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


ERROR_STATUSES = {
    "400": "Malformed or invalid input (bad image, mask size, class id, top_k).",
    "404": "Unknown backend, model or route (the message names those that exist).",
    "413": "Too large: request bytes, image pixels or side.",
    "415": "Unsupported image type (accepted: PNG, JPEG, WebP) or request type.",
    "429": "Rate limited, or a service is at its concurrency limit.",
    "503": "A service the request needs is unavailable.",
    "504": "A service missed its deadline.",
}


def error_answers(*statuses: str) -> dict:
    return {status: json_answer("Error", ERROR_STATUSES[status]) for status in statuses}


def multipart(parts: tuple[Part, ...], examples: dict) -> dict:
    """A multipart request body of `parts` (gateway/fields.py) with sendable examples."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": multipart_schema(parts), "examples": examples}
        },
    }


def get_operation(summary: str, schema: str, extra: dict | None = None, **fields) -> dict:
    operation = {"summary": summary, "responses": {"200": json_answer(schema, summary)}}
    operation["responses"].update(extra or {})
    operation.update(fields)
    return {"get": operation}


def path_param(name: str, schema: dict, example) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


def core_paths() -> dict[str, dict]:
    photo_answer = {
        "description": "The image file.",
        "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}},
    }
    return {
        "/healthz": get_operation("The process is alive.", "Status"),
        "/readyz": get_operation(
            "The classifier and at least one inpainting backend answer their health check.",
            "Status",
            {"503": json_answer("Error", "A dependency is down (named in the message).")},
        ),
        "/api/v1/info": get_operation("Model, backends and limits.", "Info", error_answers("503")),
        "/api/v1/models": get_operation(
            "Every model the classifier serves or lists as unavailable, from its model card.",
            "Models",
            error_answers("503"),
        ),
        "/api/v1/labels": get_operation(
            "The class labels in class-id order, of the default model or of `model`.",
            "Labels",
            error_answers("404", "503"),
            parameters=[
                {
                    "name": "model",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "example": "efficientnet-lite0",
                }
            ],
        ),
        "/api/v1/gallery": get_operation("The example photos.", "Gallery"),
        "/api/v1/gallery/{filename}": {
            "get": {
                "summary": "One gallery photo (the url of a gallery entry).",
                "parameters": [path_param("filename", {"type": "string"}, "soccer.jpg")],
                "responses": {"200": photo_answer, **error_answers("404")},
            }
        },
        "/api/v1/examples/stroke-{width}x{height}.png": {
            "get": {
                "summary": "A 15 px brush-stroke mask of the given size, for trying the API.",
                "parameters": [
                    path_param("width", {"type": "integer", "minimum": 1}, 227),
                    path_param("height", {"type": "integer", "minimum": 1}, 227),
                ],
                "responses": {
                    "200": {"description": "PNG mask.", "content": {"image/png": {}}},
                    **error_answers("413"),
                },
            }
        },
        "/api/v1/classify": {
            "post": {
                "summary": "Top-k classes, pinned classes and class activation maps of an image.",
                "requestBody": multipart(
                    CLASSIFY_PARTS,
                    {
                        "top5": {"value": {"image": EXAMPLE_PHOTO}},
                        "pinned-with-cams": {
                            "value": {
                                "image": EXAMPLE_PHOTO,
                                "top_k": 3,
                                "classes": "805,409",
                                "cam": "top",
                            }
                        },
                        "compare-two-models": {
                            "value": {
                                "image": EXAMPLE_PHOTO,
                                "model": "squeezenet1.1",
                                "compare": "efficientnet-lite0",
                                "cam": "805",
                            }
                        },
                    },
                ),
                "responses": {
                    "200": json_answer("ClassifyResult", "The classification."),
                    **error_answers("400", "404", "413", "415", "429", "503", "504"),
                },
            }
        },
        "/api/v1/inpaint": {
            "post": {
                "summary": "Remove the masked pixels and fill them in.",
                "requestBody": multipart(
                    INPAINT_PARTS,
                    {
                        "default-backend": {
                            "value": {"image": EXAMPLE_PHOTO, "mask": EXAMPLE_MASK}
                        },
                        "telea": {
                            "value": {
                                "image": EXAMPLE_PHOTO,
                                "mask": EXAMPLE_MASK,
                                "backend": "telea",
                            }
                        },
                    },
                ),
                "responses": {
                    "200": json_answer("InpaintResult", "The inpainted image."),
                    **error_answers("400", "404", "413", "415", "429", "503", "504"),
                },
            }
        },
        "/api/v1/edit": {
            "post": {
                "summary": "One brush stroke: inpaint, then classify the result.",
                "requestBody": multipart(
                    EDIT_PARTS,
                    {
                        "stroke": {
                            "value": {
                                "image": EXAMPLE_PHOTO,
                                "mask": EXAMPLE_MASK,
                                "backend": "telea",
                                "top_k": 5,
                                "classes": "805",
                                "cam": "805",
                            }
                        },
                        "stroke-compared": {
                            "value": {
                                "image": EXAMPLE_PHOTO,
                                "mask": EXAMPLE_MASK,
                                "backend": "telea",
                                "classes": "805",
                                "cam": "805",
                                "compare": "efficientnet-lite0",
                            }
                        },
                    },
                ),
                "responses": {
                    "200": json_answer("EditResult", "The inpainted image and its classification."),
                    **error_answers("400", "404", "413", "415", "429", "503", "504"),
                },
            }
        },
        "/api/v1/segment": {
            "post": {
                "summary": "Propose one object's region from a click on it or a box round it "
                "(GrabCut), for the select tool.",
                "requestBody": multipart(
                    SEGMENT_PARTS,
                    {
                        "click": {"value": {"image": EXAMPLE_PHOTO, "x": 40, "y": 142}},
                        "box-grown": {
                            "value": {"image": EXAMPLE_PHOTO, "box": "110,80,70,120", "grow": 2}
                        },
                    },
                ),
                "responses": {
                    "200": json_answer("SegmentResult", "The proposed region."),
                    **error_answers("400", "413", "415", "429", "503", "504"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3 document."}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics: requests by route and code, latency histograms.",
                "responses": {"200": {"description": "Prometheus text format."}},
            }
        },
    }


openapi = Blueprint("openapi", __name__)


@openapi.get("/api/v1/openapi.json")
def openapi_json():
    return openapi_document().document()


def install(app: Flask) -> None:
    document = openapi_document(app)
    document.add_schemas(SCHEMAS)
    for path, item in core_paths().items():
        document.add_path(path, item)
    app.register_blueprint(openapi)
