"""Liveness and readiness.

/healthz answers while the process lives. /readyz asks the gRPC health of the
classifier and of every inpainting address: ready when the classifier and at
least one inpainting service are SERVING; otherwise 503 naming what is down.
"""

from __future__ import annotations

from flask import Blueprint

from gateway.clients import clients

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return {"status": "ok"}


@health.get("/readyz")
def readyz():
    current = clients()
    classifier_ok, classifier_detail = current.classifier.health()
    backends = current.backends.health()
    dependencies = {
        "classifier": {
            "address": current.classifier.target,
            "ready": classifier_ok,
            "status": classifier_detail,
        },
        "inpainters": [
            {"address": address, "ready": ok, "status": detail} for address, ok, detail in backends
        ],
    }
    down = []
    if not classifier_ok:
        down.append(f"classifier ({current.classifier.target}: {classifier_detail})")
    if not any(ok for _, ok, _ in backends):
        down.append(
            "every inpainting backend ("
            + "; ".join(f"{address}: {detail}" for address, _, detail in backends)
            + ")"
        )
    if down:
        message = "not ready: " + " and ".join(down) + " unavailable"
        body = {"status": "unavailable", "error": {"code": "unavailable", "message": message}}
        return {**body, "dependencies": dependencies}, 503
    return {"status": "ready", "dependencies": dependencies}
