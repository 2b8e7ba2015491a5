"""The web page: frontend/ served as static files at `/`.

The catch-all route refuses paths under api/ (and the operational endpoints),
so an unknown API route is a JSON 404, whatever its method, and a wrong method
on a known API route stays a 405.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, request, send_from_directory
from werkzeug.routing import PathConverter
from werkzeug.security import safe_join

from gateway.errors import ApiError, not_found

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class FrontendPathConverter(PathConverter):
    """A path that is not one of the gateway's own (api/, metrics, health)."""

    regex = r"(?!api/|api$|metrics$|healthz$|readyz$)[^/].*?"


frontend = Blueprint("frontend", __name__)


def _existing_file(filename: str) -> bool:
    joined = safe_join(str(current_app.config["IC"].frontend_dir), filename)
    return joined is not None and Path(joined).is_file()


def _serve(filename: str):
    directory = current_app.config["IC"].frontend_dir
    if not _existing_file(filename):
        raise not_found(f"no such page or file: /{filename}")
    response = send_from_directory(directory, filename, max_age=0)
    # The page is small and changes with the code: always revalidate.
    response.headers["Cache-Control"] = "no-cache"
    return response


@frontend.route("/", methods=ALL_METHODS)
def index():
    return static_file("index.html")


@frontend.route("/<frontend_path:filename>", methods=ALL_METHODS)
def static_file(filename: str):
    if request.method not in ("GET", "HEAD"):
        if _existing_file(filename):
            raise ApiError(
                405, "method_not_allowed", f"/{filename} is a file: use GET", {"Allow": "GET, HEAD"}
            )
        raise not_found(f"no such route: {request.method} /{filename}")
    return _serve(filename)
