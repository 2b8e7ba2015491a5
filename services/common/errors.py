"""Errors the cores raise; the server maps them to gRPC status codes."""


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
