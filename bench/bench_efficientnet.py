"""EfficientNet-Lite0 from our converter: conversion time, gallery answers, latency.

    .venv/bin/python bench/bench_efficientnet.py [--iterations 200]

Prints, in one run:
- the conversion of the packaged .pth (read, fold, serialise, write; no cache)
  and the SHA-256 of the ONNX file;
- each gallery photo's top-1 and runner-up with probabilities, preprocessed as
  models/efficientnet-lite0.json says;
- single-image latency (p50, p99) of session.run with one ONNX Runtime thread:
  EfficientNet-Lite0 at 224x224 next to SqueezeNet 1.1 (the served graph) at
  256x256, timed in alternating rounds so both see the same machine load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.timing import time_calls
from services.classifier import preprocess
from services.classifier.converters import efficientnet_lite as lite
from services.classifier.fetch_model import ensure_model
from services.classifier.model_graph import prepare_model
from tests.support.model_cards import card_input

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO.parent / "shared" / "images"
CARD = REPO / "models" / "efficientnet-lite0.json"
LABELS = REPO.parent / "shared" / "models" / "imagenet_classes.txt"
PHOTOS = ("baseball", "sailboat", "lighthouse", "beach", "soccer", "hockey", "hockey2")
PHOTOS += ("skiing", "bank")


def session(model: bytes | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def p50_p99(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        onnx_path = lite.build_efficientnet_lite0(Path(tmp) / "efficientnet-lite0.onnx")
        seconds = time.perf_counter() - started
        data = onnx_path.read_bytes()
    print(f"conversion {seconds:.2f} s, {len(data) / 1e6:.1f} MB")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")

    card = json.loads(CARD.read_text())
    labels = LABELS.read_text().splitlines()
    lite0 = session(data)
    for name in PHOTOS:
        rgb = np.asarray(Image.open(IMAGES / f"{name}.jpg").convert("RGB"))
        logits = lite0.run(None, {"input": card_input(rgb, card["input"])})[0][0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        first, second = np.argsort(-probabilities)[:2]
        print(
            f"  {name:<10} {probabilities[first]:.3f} {labels[first]:<45.45} "
            f"| {probabilities[second]:.3f} {labels[second]:.40}"
        )

    squeezenet = prepare_model(ensure_model())
    squeeze = session(squeezenet.model.SerializeToString())
    rgb = np.asarray(Image.open(IMAGES / "soccer.jpg").convert("RGB"))
    squeeze_input = {squeezenet.input_name: preprocess.to_tensor([rgb])}
    lite_input = {"input": card_input(rgb, card["input"])}
    lite_samples: list[float] = []
    squeeze_samples: list[float] = []
    rounds = 5
    for _ in range(rounds):
        lite_samples += time_calls(
            lambda: lite0.run(["logits"], lite_input), args.iterations // rounds
        )
        squeeze_samples += time_calls(
            lambda: squeeze.run([squeezenet.scores_output], squeeze_input),
            args.iterations // rounds,
        )
    lite_p50, lite_p99 = p50_p99(lite_samples)
    squeeze_p50, squeeze_p99 = p50_p99(squeeze_samples)
    shape = squeeze_input[squeezenet.input_name].shape
    print(f"single image, 1 ORT thread, {len(lite_samples)} runs each (session.run only):")
    print(f"  EfficientNet-Lite0 224x224   p50 {lite_p50:6.2f} ms  p99 {lite_p99:6.2f} ms")
    print(
        f"  SqueezeNet 1.1     {shape[3]}x{shape[2]}   p50 {squeeze_p50:6.2f} ms  "
        f"p99 {squeeze_p99:6.2f} ms"
    )
    print(f"  ratio Lite0 / SqueezeNet (p50) {lite_p50 / squeeze_p50:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
