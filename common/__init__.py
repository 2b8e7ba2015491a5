"""What the gateway and the gRPC services share, and nothing else: configuration
from the environment, the errors the cores raise, image and mask decoding with
limits, JSON logs with request ids, gRPC channels (round_robin, retries, health),
the inpainting backends with their fallback rules, and the container health probe.

It depends on proto/ (the ic.v1 stubs) and third-party libraries only: never on
gateway/ or services/.
"""
