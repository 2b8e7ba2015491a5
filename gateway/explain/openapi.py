"""The explain endpoint's part of the OpenAPI document (gateway/openapi.py)."""

from __future__ import annotations

from gateway.fields import EXPLAIN_PARTS
from gateway.openapi import (
    EXAMPLE_PHOTO,
    error_answers,
    multipart,
    openapi_document,
    ref,
)

MAP = {
    "type": "object",
    "required": ["png", "min", "max"],
    "properties": {
        "png": {
            "type": "string",
            "description": "base64 8-bit grayscale PNG at the request image's size, scaled "
            "linearly from min (0) to max (255)",
        },
        "min": {"type": "number", "description": "The raw map's minimum, in bits."},
        "max": {"type": "number", "description": "The raw map's maximum, in bits."},
        "unit": {"type": "string", "enum": ["bits"]},
    },
}

SCHEMAS = {
    "ExplainMap": MAP,
    "ExplainCompetitor": {"allOf": [ref("ClassProbability"), ref("ExplainMap")]},
    "ExplainFix": {
        "type": "object",
        "description": "The fix-it counterfactual: the strongest hindering region inpainted.",
        "properties": {
            "applied": {"type": "boolean", "description": "False when nothing hinders."},
            "fraction": {"type": "number", "description": "Share of the image removed."},
            "mask": {"type": "string", "description": "base64 PNG, 255 = removed"},
            "image": {"type": "string", "description": "base64 PNG of the fixed image"},
            "target": ref("ClassProbability"),
            "top1": ref("ClassProbability"),
            "became_top1": {"type": "boolean"},
            "probability_before": {"type": "number"},
            "rank_before": {"type": "integer"},
            "backend": {"type": "string"},
        },
    },
    "ExplainResult": {
        "type": "object",
        "required": ["target", "hinder", "support", "competitors", "windows", "timing_ms"],
        "properties": {
            "target": ref("ClassProbability"),
            "hinder": ref("ExplainMap"),
            "support": ref("ExplainMap"),
            "competitors": {"type": "array", "items": ref("ExplainCompetitor")},
            "windows": {"type": "integer"},
            "window": {"type": "integer"},
            "stride": {"type": "integer"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "backend": {"type": "string"},
            "fallback": {"type": "boolean"},
            "laplace": {
                "type": "object",
                "description": "Probabilities p are corrected to (p*n+1)/(n+k).",
                "properties": {"n": {"type": "integer"}, "k": {"type": "integer"}},
            },
            "fix": ref("ExplainFix"),
            "faithfulness": {
                "type": "object",
                "description": "With faithfulness=true: removal of the top q% by hinder vs "
                "random and CAM-least regions; deletion/insertion curves and AUC for "
                "support vs CAM and random.",
            },
            "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
    "ExplainProgress": {
        "type": "object",
        "required": ["done", "total"],
        "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
    },
}

PATH = {
    "post": {
        "summary": "Undesirable pixels: which regions hinder the target, support it, or "
        "support its competitors (each window inpainted and the image reclassified).",
        "description": "With `Accept: application/x-ndjson` the answer is a stream of "
        'lines: `{"done": k, "total": n}` progress lines, then the ExplainResult '
        "(or an Error object if the work failed after the stream began). Closing the "
        "connection cancels the work.",
        "requestBody": multipart(
            EXPLAIN_PARTS,
            {
                "default": {"value": {"image": EXAMPLE_PHOTO}},
                "fix": {
                    "value": {
                        "image": EXAMPLE_PHOTO,
                        "target": 768,
                        "backend": "telea",
                        "fix": "true",
                        "fix_fraction": 0.05,
                    }
                },
            },
        ),
        "responses": {
            "200": {
                "description": "The maps (JSON), or progress lines then the maps (NDJSON).",
                "content": {
                    "application/json": {"schema": ref("ExplainResult")},
                    "application/x-ndjson": {
                        "schema": {
                            "oneOf": [
                                ref("ExplainProgress"),
                                ref("ExplainResult"),
                                ref("Error"),
                            ]
                        }
                    },
                },
            },
            **error_answers("400", "404", "413", "415", "429", "503", "504"),
        },
    }
}


def install(app) -> None:
    document = openapi_document(app)
    document.add_schemas(SCHEMAS)
    document.add_path("/api/v1/explain", PATH)
