"""The OpenCV inpainting service: Telea, Navier-Stokes and the blur / mean
baselines behind the `Inpainter` gRPC contract (engines.py is the core)."""
