"""Classifier latency and throughput per model: through gRPC against the bare computation.

    .venv/bin/python bench/bench_classifier.py [--iterations 200] [--models squeezenet1.1,...]

Prints, in one run, for every built-in model (its card in models/):
- single-image latency (p50, p99) of Classify through gRPC (raw RGB of a
  227x227 gallery photo, top-5, `model` named) next to the bare in-process
  ONNX Runtime call on the same image (the model's `forward` on the prepared
  tensor) and the whole in-process core (preprocess + run + softmax + top-k),
  with the ratios;
- batch throughput (images/s) for batches of 1, 8 and 32, through gRPC and bare.
Both sides use one ONNX Runtime thread (the service default); one service
serves every model, as in production.
Target: p50 through gRPC within 1.3x of the bare call; printed against both the
in-process core (the same work: image in, top-5 out) and session.run alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from bench.served_models import BUILTIN, builtin_model, classifier_service
from bench.timing import time_calls
from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "images" / "soccer.jpg"


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def bench_model(name: str, stub, rgb: np.ndarray, iterations: int) -> None:
    core = builtin_model(name)
    tensor = core.preprocessor.to_tensor([rgb])
    shape = "x".join(str(d) for d in tensor.shape[1:])
    print(f"\n== {name}: photo {rgb.shape[1]}x{rgb.shape[0]}, network input {shape}")
    bare_run = time_calls(lambda: core.forward(tensor, with_features=False), iterations)
    bare_core = time_calls(lambda: core.classify([rgb], top_k=5), iterations)
    one = classifier_pb2.ClassifyRequest(images=[raw_image(rgb)], top_k=5, model=name)
    via_grpc = time_calls(lambda: stub.Classify(one, timeout=30), iterations)

    rows = [
        ("bare ONNX Runtime run", bare_run),
        ("in-process core", bare_core),
        ("gRPC Classify", via_grpc),
    ]
    print("single-image latency (ms)")
    print(f"  {'':<24}{'p50':>8}{'p99':>8}{'p50 / bare run':>16}")
    base = statistics.median(bare_run)
    for label, samples in rows:
        p50 = percentile(samples, 50)
        print(f"  {label:<24}{p50:>8.2f}{percentile(samples, 99):>8.2f}{p50 / base:>15.2f}x")
    # The target compares the same work with and without the RPC: the image in,
    # the top-5 out. Against session.run alone (no resize, no softmax) it is
    # printed too, as the stricter reading.
    for what, reference in (("in-process core", bare_core), ("bare run", bare_run)):
        ratio = percentile(via_grpc, 50) / percentile(reference, 50)
        print(
            f"  target: gRPC p50 within 1.3x of the {what} -> {ratio:.2f}x "
            f"({'met' if ratio <= 1.3 else 'NOT met'})"
        )

    print("batch throughput (images/s)")
    print(f"  {'batch':<8}{'bare run':>12}{'gRPC':>12}{'gRPC / bare':>14}")
    for size in (1, 8, 32):
        batch_tensor = core.preprocessor.to_tensor([rgb] * size)
        request = classifier_pb2.ClassifyRequest(
            images=[raw_image(rgb)] * size, top_k=5, model=name
        )
        repeats = max(5, iterations // size)
        bare = statistics.median(
            time_calls(lambda t=batch_tensor: core.forward(t, False), repeats, warmup=2)
        )
        remote = statistics.median(
            time_calls(lambda r=request: stub.Classify(r, timeout=60), repeats, warmup=2)
        )
        bare_ips, remote_ips = size / bare * 1e3, size / remote * 1e3
        print(f"  {size:<8}{bare_ips:>12.1f}{remote_ips:>12.1f}{remote_ips / bare_ips:>13.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--models", default=",".join(BUILTIN))
    args = parser.parse_args()

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    print(f"photo {PHOTO.name}, {args.iterations} iterations, one ONNX Runtime thread")
    with (
        classifier_service("bench_classifier") as proc,
        grpc.insecure_channel(proc.address) as channel,
    ):
        stub = classifier_pb2_grpc.ClassifierStub(channel)
        for name in args.models.split(","):
            bench_model(name.strip(), stub, rgb, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
