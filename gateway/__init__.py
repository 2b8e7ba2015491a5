"""The HTTP gateway: validation, limits, orchestration of the gRPC services,
the public API of shared/design/API.md, metrics and the static web page."""

__version__ = "1.0.0"
