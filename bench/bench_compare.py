"""/api/v1/edit with and without `compare`: what a second model costs a brush stroke.

    .venv/bin/python bench/bench_compare.py [--iterations 200] [--rounds 8]

Starts the real classifier (both built-in models), the OpenCV inpainter and the
gateway, then times, at 1 client, the page's request (the working copy as PNG,
a 15 px stroke, telea, top-5, the photo's top-5 pinned, one CAM) four ways:
each model alone, and each with the other as `compare`. The four run in
interleaved rounds so a neighbour's load on the shared machine hits them alike.
A comparison inpaints once and classifies with both models at once (one on the
request's thread, one on a standing thread; the classifier runs them on two
cores), so it should cost about the slower model alone, not the sum.
Target: with `compare`, p50 at most 1.4x the p50 without it. Printed against the
same model alone and against the slower of the two alone (a comparison cannot
beat the slower model's own time), next to the bare computation's own overlap:
both models in one process, one after the other and on two threads at once,
which says how much parallelism the machine had to give during the run.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import requests
from PIL import Image

from bench.bench_edit import brush_stroke, photo_path, png, run_clients, stats
from bench.served_models import builtin_model, classifier_service
from tests.gateway_fixtures import GatewayProcess
from tests.support.processes import ServiceProcess

MODELS = ("squeezenet1.1", "efficientnet-lite0")
TARGET_RATIO = 1.4


def prepared_body(url: str, files: dict, fields: dict):
    """A multipart body encoded once (as a browser's FormData); a fresh boundary per call."""
    prepared = requests.Request("POST", url, files=files, data=fields).prepare()
    content_type = prepared.headers["Content-Type"]
    boundary = content_type.split("boundary=", 1)[1].encode()

    def fresh() -> tuple[bytes, dict]:
        new = os.urandom(len(boundary) // 2).hex().encode()[: len(boundary)]
        return prepared.body.replace(boundary, new), {
            "Content-Type": content_type.replace(boundary.decode(), new.decode())
        }

    return fresh


def bare_overlap(rgb: np.ndarray, repeats: int = 40) -> tuple[float, float]:
    """(one after the other, at once) ms: both models' classification in this process,
    the second on a thread of its own. What the machine allows right now: on two
    idle cores "at once" takes about the slower one's time; on a loaded machine
    it takes as long as one after the other, and so must any comparison."""
    models = [builtin_model(name) for name in MODELS]

    def classify(model) -> None:
        model.classify([rgb], top_k=5, cam_class_ids=[0])

    serial, parallel = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for model in models:
            classify(model)
        serial.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        other = threading.Thread(target=classify, args=(models[1],))
        other.start()
        classify(models[0])
        other.join()
        parallel.append((time.perf_counter() - started) * 1e3)
    return statistics.median(serial), statistics.median(parallel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed calls per case")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rgb = np.asarray(Image.open(photo_path()).convert("RGB"))
    mask = brush_stroke(*rgb.shape[:2])
    top = builtin_model(MODELS[0]).classify([rgb], top_k=5).results[0].top
    pinned = [score.class_id for score in top]
    base_fields = {
        "backend": "telea",
        "top_k": "5",
        "classes": ",".join(map(str, pinned)),
        "cam": str(pinned[0]),
    }
    cases = {}
    for model in MODELS:
        other = next(m for m in MODELS if m != model)
        cases[model] = {**base_fields, "model": model}
        cases[f"{model} + compare"] = {**base_fields, "model": model, "compare": other}

    with (
        classifier_service("bench_compare") as classifier,
        ServiceProcess("services.inpainter", health_service="ic.v1.Inpainter") as inpainter,
        GatewayProcess(classifier.address, [inpainter.address], IC_LOG_LEVEL="WARNING") as gw,
    ):
        url = f"{gw.url}/api/v1/edit"
        where = urlsplit(url)
        first = requests.post(
            url,
            files={"image": ("photo.png", png(rgb)), "mask": ("mask.png", png(mask[::-1]))},
            data=base_fields,
            timeout=60,
        )
        first.raise_for_status()
        working_copy = base64.b64decode(first.json()["image"])
        files = {"image": ("image.png", working_copy), "mask": ("mask.png", png(mask))}
        bodies = {name: prepared_body(url, files, fields) for name, fields in cases.items()}

        def caller(name: str):
            def call(state) -> None:
                connection = state.get("connection")
                if connection is None:
                    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
                    state["connection"] = connection
                body, headers = bodies[name]()
                connection.request("POST", where.path, body=body, headers=headers)
                reply = connection.getresponse()
                payload = reply.read()
                if reply.status != 200:
                    raise SystemExit(
                        f"{name}: /api/v1/edit answered {reply.status}: {payload[:300]!r}"
                    )
                state["payload"] = payload

            return call

        for name in cases:  # the answers are what the bench claims to measure
            state: dict = {}
            caller(name)(state)
            answer = json.loads(state["payload"])
            assert answer["model"] == cases[name]["model"] and len(answer["cams"]) == 1
            assert ("compare" in answer) == ("compare" in cases[name]), name

        samples: dict[str, list[float]] = {name: [] for name in cases}
        timings: dict[str, list[dict]] = {name: [] for name in cases}
        per_round = max(4, args.iterations // args.rounds)
        for _ in range(args.rounds):
            for name in cases:
                kept = timings[name]

                def keep(state, kept=kept) -> None:
                    kept.append(json.loads(state["payload"])["timing_ms"])

                got, _ = run_clients(caller(name), 1, per_round, keep)
                samples[name].extend(got)

    print(
        f"/api/v1/edit at 1 client: {rgb.shape[1]}x{rgb.shape[0]} photo, 15 px stroke, telea, "
        f"top-5, 5 pinned, 1 CAM; {len(samples[MODELS[0]])} calls per case in {args.rounds} "
        "interleaved rounds"
    )
    print(f"{'':36}{'p50 ms':>9}{'p99 ms':>9}{'classify ms':>13}")
    p50 = {}
    for name in cases:
        p50[name], p99 = stats(samples[name])
        classify = statistics.median(t["classify"] for t in timings[name])
        print(f"{name:36}{p50[name]:9.2f}{p99:9.2f}{classify:13.2f}")
    # How much the two classifications of a comparison overlapped: the wall time of
    # both over the sum of each one's own time in the classifier (1.0: one after
    # the other; 0.5: fully at once).
    for model in MODELS:
        rows = timings[f"{model} + compare"]
        wall = statistics.median(t["classify"] for t in rows)
        own = statistics.median(t["classifier_total"] + t["classifier_compare_total"] for t in rows)
        print(f"{model} + compare: both classifications {wall:.2f} ms wall for {own:.2f} ms of "
              f"classifier work -> overlap {wall / own:.2f} (0.5 = fully parallel, 1 = serial)")  # fmt: skip
    serial, parallel = bare_overlap(rgb)
    print(f"bare, in this process: both models one after the other {serial:.2f} ms, "
          f"at once {parallel:.2f} ms -> {parallel / serial:.2f} (what the machine allows now)")  # fmt: skip
    print(f"load average (1 min) before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    slower = max(p50[m] for m in MODELS)
    for model in MODELS:
        with_compare = p50[f"{model} + compare"]
        alone = with_compare / p50[model]
        vs_slower = with_compare / slower
        print(
            f"target {model} + compare: p50 {alone:.2f}x its own p50 "
            f"({'met' if alone <= TARGET_RATIO else 'NOT met'}), "
            f"{vs_slower:.2f}x the slower model alone "
            f"({'met' if vs_slower <= TARGET_RATIO else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
