"""The component schemas of the OpenAPI document (gateway/openapi.py): the JSON
answers of API.md, each declared once and referred to by name."""

from __future__ import annotations


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


CLASS = {
    "type": "object",
    "required": ["class_id", "label", "probability"],
    "properties": {
        "class_id": {"type": "integer"},
        "label": {"type": "string"},
        "probability": {"type": "number"},
        "rank": {"type": "integer", "description": "1 for the most probable class."},
    },
}
CAM = {
    "type": "object",
    "required": ["class_id", "width", "height", "map_width", "map_height", "png"],
    "properties": {
        "class_id": {"type": "integer"},
        "width": {
            "type": "integer",
            "description": "The request image's width: the map covers it.",
        },
        "height": {"type": "integer", "description": "The request image's height."},
        "map_width": {"type": "integer", "description": "The PNG's own width (cam_size)."},
        "map_height": {"type": "integer", "description": "The PNG's own height."},
        "png": {
            "type": "string",
            "description": "base64 8-bit grayscale PNG, 255 = most active; gray + alpha for "
            "a model that crops: transparent where it did not look",
        },
        "seen": {
            "type": "object",
            "description": "A model that crops: the box it saw, in PNG pixels.",
            "properties": {k: {"type": "integer"} for k in ("x", "y", "width", "height")},
        },
        "raw_min": {"type": "number"},
        "raw_max": {"type": "number"},
    },
}
CLASSIFY_FIELDS = {
    "model": {"type": "string", "description": "The model that answered."},
    "predictions": {"type": "array", "items": ref("ClassProbability")},
    "pinned": {"type": "array", "items": ref("ClassProbability")},
    "cams": {"type": "array", "items": ref("ClassActivationMap")},
    "compare": ref("Comparison"),
    "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
    "served_by": {"type": "object", "additionalProperties": {"type": "string"}},
}
COMPARISON = {
    "type": "object",
    "description": "With `compare`: the second model's classification of the same image.",
    "required": ["model", "predictions", "pinned", "cams"],
    "properties": {
        "model": {"type": "string"},
        "predictions": {"type": "array", "items": ref("ClassProbability")},
        "pinned": {"type": "array", "items": ref("ClassProbability")},
        "cams": {"type": "array", "items": ref("ClassActivationMap")},
        "cam_reason": {
            "type": "string",
            "description": "Present when the compare model has no CAMs: why.",
        },
        "served_by": {"type": "string"},
    },
}
MODEL_INFO = {
    "type": "object",
    "required": ["name", "title", "default", "available", "num_classes", "cam"],
    "properties": {
        "name": {"type": "string"},
        "title": {"type": "string"},
        "default": {"type": "boolean"},
        "available": {"type": "boolean"},
        "unavailable_reason": {"type": "string"},
        "num_classes": {"type": "integer"},
        "cam": {"type": "boolean"},
        "cam_reason": {"type": "string", "description": "Why there are no CAMs."},
        "input": {
            "type": "object",
            "description": "The model card's input: size [h, w] or short_side, crop, "
            "layout, color, scale, mean, std.",
        },
        "input_size": {"type": "array", "items": {"type": "integer"}},
        "outputs": {"type": "string"},
        "licence": {"type": "string"},
        "incremental": {"type": "boolean"},
        "incremental_reason": {"type": "string"},
    },
}
INPAINT_FIELDS = {
    "image": {"type": "string", "description": "base64 PNG of the inpainted image"},
    "backend": {"type": "string", "description": "The backend that did the work."},
    "fallback": {"type": "boolean", "description": "True when the requested one was down."},
    "width": {"type": "integer"},
    "height": {"type": "integer"},
    "removed_pixels": {
        "type": "integer",
        "description": "How many pixels the mask removed. 0 is valid: removing nothing is a "
        "no-op answered 200 with the image unchanged (one rule for inpaint, edit and "
        "explain's fix-it).",
    },
    "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
    "served_by": {"type": "object", "additionalProperties": {"type": "string"}},
}
SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "ClassProbability": CLASS,
    "ClassActivationMap": CAM,
    "Comparison": COMPARISON,
    "ModelInfo": MODEL_INFO,
    "Models": {
        "type": "object",
        "properties": {
            "models": {"type": "array", "items": ref("ModelInfo")},
            "default": {"type": "string"},
        },
    },
    "ClassifyResult": {
        "type": "object",
        "required": ["model", "predictions", "pinned", "cams"],
        "properties": CLASSIFY_FIELDS,
    },
    "InpaintResult": {
        "type": "object",
        "required": ["image", "backend", "fallback"],
        "properties": INPAINT_FIELDS,
    },
    "EditResult": {
        "type": "object",
        "required": ["image", "backend", "fallback", "model", "predictions", "pinned", "cams"],
        "properties": {**INPAINT_FIELDS, **CLASSIFY_FIELDS},
    },
    "Info": {
        "type": "object",
        "required": ["version", "model", "models", "backends", "limits"],
        "properties": {
            "version": {"type": "string"},
            "models": {"type": "array", "items": ref("ModelInfo")},
            "model": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "input_size": {"type": "array", "items": {"type": "integer"}},
                    "num_classes": {"type": "integer"},
                    "cam": {"type": "boolean"},
                },
            },
            "backends": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "available", "default", "description"],
                    "properties": {
                        "name": {"type": "string"},
                        "available": {"type": "boolean"},
                        "default": {"type": "boolean"},
                        "description": {"type": "string"},
                    },
                },
            },
            "explain": {
                "type": "object",
                "description": "Whether POST /api/v1/explain can work now (the explainer "
                "service's health), and why not.",
                "properties": {
                    "available": {"type": "boolean"},
                    "reason": {"type": "string"},
                },
            },
            "limits": {
                "type": "object",
                "properties": {
                    "max_upload_bytes": {"type": "integer"},
                    "max_pixels": {"type": "integer"},
                    "max_side": {"type": "integer"},
                },
            },
        },
    },
    "Labels": {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "labels": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Gallery": {
        "type": "object",
        "properties": {
            "images": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "title", "url"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "url": {"type": "string"},
                    },
                },
            }
        },
    },
    "Status": {"type": "object", "properties": {"status": {"type": "string"}}},
    "SegmentResult": {
        "type": "object",
        "required": ["mask", "box", "pixels", "fraction", "width", "height"],
        "properties": {
            "mask": {
                "type": "string",
                "description": "base64 8-bit PNG of the image's size, 255 = the proposed object",
            },
            "box": {
                "type": "object",
                "nullable": True,
                "description": "The region's bounding box; null when nothing was found.",
                "properties": {
                    "x": {"type": "integer"},
                    "y": {"type": "integer"},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                },
            },
            "pixels": {"type": "integer"},
            "fraction": {"type": "number", "description": "Share of the image's pixels."},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
            "served_by": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}
