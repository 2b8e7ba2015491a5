"""The explainer's events as the JSON of API.md ("Explain").

The maps travel from the explainer as 8-bit grayscale with their range in
bits; here they become base64 PNGs. Progress lines are `{"done", "total"}`;
a preview is a line with the maps of the coarse pass, `"pass": "coarse"` and
`"final": false`; the result is the final object (`"pass": "full"`,
`"final": true`).
"""

from __future__ import annotations

import numpy as np

from common.images import encode_png
from gateway.jsonbody import Base64
from ic.v1 import classifier_pb2, explainer_pb2, image_pb2


def class_json(message: classifier_pb2.ClassProbability) -> dict:
    return {
        "class_id": message.class_id,
        "label": message.label,
        "probability": message.probability,
        "rank": message.rank,
    }


def gray_png(width: int, height: int, data: bytes) -> Base64:
    return Base64(encode_png(np.frombuffer(data, dtype=np.uint8).reshape(height, width)))


def map_json(message: explainer_pb2.EvidenceMap) -> dict:
    return {
        "png": gray_png(message.width, message.height, message.data),
        "min": message.min,
        "max": message.max,
        "unit": "bits",
        "width": message.width,
        "height": message.height,
    }


def maps_json(message: explainer_pb2.ExplainMaps) -> dict:
    return {
        "pass": getattr(message, "pass"),  # a Python keyword
        "final": getattr(message, "pass") == "full",
        "windows": message.windows,
        "target": class_json(message.target),
        "hinder": map_json(message.hinder),
        "support": map_json(message.support),
        "competitors": [
            {**class_json(item.competitor), **map_json(item.map)} for item in message.competitors
        ],
    }


def progress_json(message: explainer_pb2.Progress) -> dict:
    return {"done": message.done, "total": message.total}


def fix_json(message: explainer_pb2.FixResult, target: classifier_pb2.ClassProbability) -> dict:
    mask = message.mask
    body = {
        "applied": message.applied,
        "fraction": message.fraction,
        "mask": gray_png(mask.width, mask.height, mask.data),
        "probability_before": target.probability,
        "rank_before": target.rank,
        "backend": message.backend,
        "width": mask.width,
        "height": mask.height,
    }
    if message.applied:
        body.update(
            image=rgb_png(message.image),
            target=class_json(message.target),
            top1=class_json(message.top1),
            became_top1=message.target.rank == 1,
        )
    else:
        body["message"] = "no region hinders the target: nothing to remove"
    return body


def rgb_png(image: image_pb2.RawImage) -> Base64:
    rgb = np.frombuffer(image.rgb, dtype=np.uint8).reshape(image.height, image.width, 3)
    return Base64(encode_png(rgb))


def faithfulness_json(message: explainer_pb2.Faithfulness) -> dict:
    return {
        "target_id": message.target_id,
        "p_target": message.p_target,
        "removal": {
            removal.method: [
                {
                    "fraction": step.fraction,
                    "p_target": step.p_target,
                    "rise": step.rise,
                    "top1_is_target": step.top1_is_target,
                }
                for step in removal.steps
            ]
            for removal in message.removal
        },
        "curve_fractions": list(message.curve_fractions),
        "deletion": {
            c.method: {"p_target": list(c.p_target), "auc": c.auc} for c in message.deletion
        },
        "insertion": {
            c.method: {"p_target": list(c.p_target), "auc": c.auc} for c in message.insertion
        },
    }


def result_json(message: explainer_pb2.ExplainResult) -> dict:
    maps = maps_json(message.maps)
    body = {
        "target": class_json(message.target),
        "hinder": maps["hinder"],
        "support": maps["support"],
        "competitors": maps["competitors"],
        "windows": maps["windows"],
        "window": message.window,
        "stride": message.stride,
        "width": message.width,
        "height": message.height,
        "work_size": [message.work_width, message.work_height],
        "backend": message.backend,
        "fallback": message.fallback,
        "backends_used": [
            {"backend": b.engine, "windows": b.windows} for b in message.backends_used
        ],
        "model": message.model,
        "incremental": message.incremental,
        "classify_calls": message.classify_calls,
        "laplace": {"n": message.laplace_n, "k": message.laplace_k},
        "pass": maps["pass"],
        "final": True,
    }
    if message.HasField("fix"):
        body["fix"] = fix_json(message.fix, message.target)
    if message.HasField("faithfulness"):
        body["faithfulness"] = faithfulness_json(message.faithfulness)
    return body
