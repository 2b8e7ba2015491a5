"""Errors the cores and the shared clients raise. The gRPC servers map them to
status codes (services/runtime/grpc_server.py), the gateway to HTTP statuses
(gateway/errors.py)."""

from __future__ import annotations

# Trailing metadata of a call that failed: whose failure it is (the answering
# service's name, or the service it called, for an answer passed on).
ERROR_SOURCE_KEY = "ic-error-source"


class InvalidInput(ValueError):
    """The caller sent something we refuse; the message names the problem.

    Mapped to INVALID_ARGUMENT by the servers and to HTTP 400 by the gateway.
    """


class UnsupportedImageType(InvalidInput):
    """The bytes are an image format we do not accept (HTTP 415 at the gateway)."""


class TooLarge(InvalidInput):
    """The image has more pixels or a longer side than the configured limit
    (HTTP 413 at the gateway)."""


class EngineUnavailable(RuntimeError):
    """A component exists but cannot run here right now (FAILED_PRECONDITION)."""


class NotFound(LookupError):
    """A name the caller gave (a backend, a model) does not exist (NOT_FOUND, HTTP 404)."""


class Unavailable(RuntimeError):
    """A service the work needs cannot be reached right now (UNAVAILABLE, HTTP 503)."""


class Busy(RuntimeError):
    """A service is doing as much as it is allowed to at once (RESOURCE_EXHAUSTED, HTTP 429)."""


class ServiceCallFailed(RuntimeError):
    """A call to another service failed in a way the caller should pass on.

    `error` is the grpc.RpcError, `service` says which service in words people
    read ("inpainting (telea)"), so the message can name it.
    """

    def __init__(self, service: str, error: Exception) -> None:
        details = error.details() if hasattr(error, "details") else str(error)
        super().__init__(f"{service}: {details}")
        self.service = service
        self.error = error
