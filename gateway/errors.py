"""Every failure becomes `{"error": {"code", "message"}}` with the status of
API.md: one place maps our exceptions, Werkzeug's and gRPC's."""

from __future__ import annotations

import logging

import grpc
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from common.errors import (
    InvalidInput,
    NotFound,
    ServiceCallFailed,
    TooLarge,
    Unavailable,
    UnsupportedImageType,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than 200: HTTP status, a short code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_argument", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message)


# gRPC status of a backend call -> (HTTP status, error code).
GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_argument"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource_exhausted"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.FAILED_PRECONDITION: (503, "unavailable"),
    grpc.StatusCode.UNIMPLEMENTED: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline_exceeded"),
    grpc.StatusCode.CANCELLED: (503, "unavailable"),
}

# Werkzeug's names are fine for people; the codes are ours.
HTTP_CODES = {
    400: "invalid_argument",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def from_rpc_error(exc: grpc.RpcError, service: str) -> ApiError:
    """What a failed call to `service` means for the HTTP caller."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(code)
    status, name = GRPC_TO_HTTP.get(code, (502, "bad_gateway"))
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        # The service names the problem; its words are the useful part.
        message = details
        # ImageLimits' words: a service stricter than the gateway still means 413.
        if "allowed" in details and ("longest side" in details or "pixels" in details):
            status, name = 413, "too_large"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"the {service} service did not answer within its deadline"
    elif code is grpc.StatusCode.UNAVAILABLE:
        # Plain words first (the page shows this to people); gRPC's after, for operators.
        message = (
            f"the {service} service is not reachable right now; try again in a moment ({details})"
        )
    else:
        message = f"the {service} service failed: {code.name}: {details}"
    return ApiError(status, name, message)


def from_input_error(exc: InvalidInput) -> ApiError:
    if isinstance(exc, UnsupportedImageType):
        return ApiError(415, "unsupported_media_type", str(exc))
    if isinstance(exc, TooLarge):
        return ApiError(413, "too_large", str(exc))
    return bad_request(str(exc))


def error_response(error: ApiError):
    response = jsonify({"error": {"code": error.code, "message": error.message}})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc)

    @app.errorhandler(InvalidInput)
    def _invalid_input(exc: InvalidInput):
        return error_response(from_input_error(exc))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return error_response(not_found(str(exc)))

    @app.errorhandler(Unavailable)
    def _unavailable(exc: Unavailable):
        return error_response(unavailable(str(exc)))

    @app.errorhandler(ServiceCallFailed)
    def _service_failed(exc: ServiceCallFailed):
        return error_response(from_rpc_error(exc.error, exc.service))

    @app.errorhandler(grpc.RpcError)
    def _rpc_error(exc: grpc.RpcError):
        return error_response(from_rpc_error(exc, "backend"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the {limit} bytes allowed"
        elif status == 404:
            message = f"no such route: {request.method} {request.path}"
        elif status == 405 and valid_methods:
            message = (
                f"{request.method} is not allowed on {request.path}; use {', '.join(valid_methods)}"
            )
        error = ApiError(
            status, HTTP_CODES.get(status, exc.name.lower().replace(" ", "_")), message
        )
        response = error_response(error)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # A bug of ours: log it with its traceback, answer in the same shape.
        log.exception("unhandled error")
        return error_response(ApiError(500, "internal", f"internal error: {type(exc).__name__}"))
