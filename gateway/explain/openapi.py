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
            "description": "base64 8-bit grayscale PNG at the request image's size (shrunk "
            "to the explainer's IC_EXPLAIN_MAX_MAP_SIDE for big photos), scaled linearly "
            "from min (0) to max (255)",
        },
        "min": {"type": "number", "description": "The raw map's minimum, in bits."},
        "max": {"type": "number", "description": "The raw map's maximum, in bits."},
        "unit": {"type": "string", "enum": ["bits"]},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
    },
}

CLASS_PROBABILITY_LIST = {"type": "array", "items": ref("ExplainCompetitor")}

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
            "model": {"type": "string", "description": "The model explained."},
            "target": ref("ClassProbability"),
            "hinder": ref("ExplainMap"),
            "support": ref("ExplainMap"),
            "competitors": {"type": "array", "items": ref("ExplainCompetitor")},
            "windows": {"type": "integer"},
            "window": {"type": "integer"},
            "stride": {"type": "integer"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "work_size": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "[width, height] of the copy the windows were inpainted and "
                "classified on: the photo itself, or for a photo larger than the model's "
                "input, a copy at that size.",
            },
            "backend": {
                "type": "string",
                "description": "The engine that filled most windows.",
            },
            "fallback": {
                "type": "boolean",
                "description": "True when any window was filled by an engine other than the "
                "one asked for (its service was down, or died during the explanation).",
            },
            "backends_used": {
                "type": "array",
                "description": "Every engine that filled windows, most windows first.",
                "items": {
                    "type": "object",
                    "properties": {
                        "backend": {"type": "string"},
                        "windows": {"type": "integer"},
                    },
                },
            },
            "incremental": {
                "type": "boolean",
                "description": "True when the classifier computed the windows incrementally.",
            },
            "classify_calls": {
                "type": "integer",
                "description": "ClassifyEdits calls the windows took.",
            },
            "pass": {"type": "string", "enum": ["full"]},
            "final": {"type": "boolean", "enum": [True]},
            "served_by": {"type": "object", "additionalProperties": {"type": "string"}},
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
    "ExplainPreview": {
        "type": "object",
        "description": "Maps of the coarse pass (a subset of the grid's windows), sent as "
        "soon as they exist: draw them, then replace them with the final object's.",
        "required": ["pass", "final", "windows", "target", "hinder", "support", "competitors"],
        "properties": {
            "pass": {"type": "string", "enum": ["coarse"]},
            "final": {"type": "boolean", "enum": [False]},
            "windows": {"type": "integer", "description": "Windows these maps average."},
            "target": ref("ClassProbability"),
            "hinder": ref("ExplainMap"),
            "support": ref("ExplainMap"),
            "competitors": CLASS_PROBABILITY_LIST,
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
        'lines: `{"done": k, "total": n}` progress lines, an ExplainPreview line with the '
        "maps of a coarse pass as soon as they exist, then the ExplainResult (or an Error "
        "object if the work failed after the stream began). Closing the connection cancels "
        "the work. If the explainer service is down, the answer is 503 naming it.",
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
                                ref("ExplainPreview"),
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
