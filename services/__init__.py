"""The gRPC services: classifier, inpainter (OpenCV) and patchmatch (C engine).

Each is a small package with a pure core that knows nothing of gRPC and a thin
server (`server.py`) that adapts the core to proto/ic/v1. `common` holds what
every server shares: image decoding, limits, health, logging, metrics.
"""
