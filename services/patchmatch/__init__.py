"""PatchMatch inpainting service: a C engine (src/, built by `make native`) behind a
ctypes binding (native.py) and the Inpainter gRPC server."""
