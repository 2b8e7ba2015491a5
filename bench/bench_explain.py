"""Undesirable-pixels explanations: the classifier's share, end to end, replicas.

    .venv/bin/python bench/bench_explain.py [--runs 5] [--no-faithfulness]

Starts three classifiers, the OpenCV inpainter, three explainers and three gateways
(`python -m ...` each, on free loopback ports; one explainer/gateway pair per
classifier setting) and prints, in one run, for the default grid (48 px
windows, stride 16: 169 windows) of the 227x227 soccer photo, telea:
- (a) brute force: the 169 inpainted images through Classify, 16 a batch, in
  turn (every image through the whole network), and the bare classifier core
  on them in this process;
- (b) the incremental RPC: ClassifyEdits on the same windows (each window's
  box and pixels, 16 a batch, in turn) against the same classifier process,
  one ONNX Runtime thread both ways; its answer says whether it ran
  incrementally;
- (c) POST /api/v1/explain end to end, streamed: time to the first preview
  line and to the final answer, with 1 and with 2 classifier replicas
  (round_robin over both, a call in flight for each), and with 1 replica of 2
  ONNX Runtime threads (what `make run` starts on 2 cores), runs alternated so
  load changes hit all alike;
- the faithfulness table of the gallery photos (services.explainer.faithfulness).
Targets: (b) at least 1.5x faster than (a) over RPC, (c) under 1 s, and the
first preview within 0.3x of the final answer's time.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import requests
from PIL import Image

from bench.served_models import builtin_model, classifier_service
from common.channels import open_channel
from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc
from services.explainer import grid as grids
from services.explainer.clients import Dependencies, DependencySettings
from services.explainer.explainer import Explainer
from services.explainer.faithfulness import explain_folder, format_table, summarise
from tests.explainer_fixtures import ExplainerProcess
from tests.gateway_fixtures import GatewayProcess
from tests.support.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[1]
IMAGE_DIRS = (REPO / "gallery", REPO.parent / "shared" / "images")
BATCH = 16
TARGET_INCREMENTAL = 1.5
TARGET_S = 1.0
TARGET_PREVIEW = 0.3


def gallery_dir() -> Path:
    for directory in IMAGE_DIRS:
        if (directory / "soccer.jpg").is_file():
            return directory
    raise SystemExit(f"no soccer.jpg in {', '.join(map(str, IMAGE_DIRS))}: run `make gallery`")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# -- (a) and (b): the classifier's share -------------------------------------------


def inpainted_windows(rgb: np.ndarray, windows: grids.WindowGrid) -> list[np.ndarray]:
    """Each window filled by Telea (radius 3), as the telea engine does."""
    images = []
    for x, y, w, h in windows.rects():
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[y : y + h, x : x + w] = 255
        images.append(cv2.inpaint(rgb, mask, 3, cv2.INPAINT_TELEA))
    return images


def brute_force_rpc(stub, images: list[np.ndarray], class_ids: list[int]) -> float:
    """Seconds of Classify over every image, BATCH at a time, in turn."""
    messages = [raw_image(image) for image in images]
    started = time.perf_counter()
    for start in range(0, len(messages), BATCH):
        stub.Classify(
            classifier_pb2.ClassifyRequest(
                images=messages[start : start + BATCH], top_k=1, pinned_class_ids=class_ids
            ),
            timeout=120,
        )
    return time.perf_counter() - started


def edits_rpc(stub, rgb, images, windows, class_ids) -> tuple[float, bool]:
    """(seconds, incremental?) of ClassifyEdits over the same windows, BATCH at a time."""
    edits = [
        classifier_pb2.ImageEdit(
            rect={"x": x, "y": y, "width": w, "height": h},
            rgb=np.ascontiguousarray(image[y : y + h, x : x + w]).tobytes(),
        )
        for image, (x, y, w, h) in zip(images, windows.rects()[: len(images)], strict=True)
    ]
    base = raw_image(rgb)
    incremental = True
    started = time.perf_counter()
    for start in range(0, len(edits), BATCH):
        answer = stub.ClassifyEdits(
            classifier_pb2.ClassifyEditsRequest(
                base=base, edits=edits[start : start + BATCH], top_k=1, pinned_class_ids=class_ids
            ),
            timeout=120,
        )
        incremental = incremental and answer.incremental
    return time.perf_counter() - started, incremental


def bare_core(images: list[np.ndarray], class_ids: list[int]) -> float:
    classifier = builtin_model()
    started = time.perf_counter()
    for start in range(0, len(images), BATCH):
        classifier.classify(images[start : start + BATCH], top_k=1, pinned_class_ids=class_ids)
    return time.perf_counter() - started


# -- (c): end to end -------------------------------------------------------------


def explain_streamed(session: requests.Session, gateway: GatewayProcess, photo: bytes):
    """(seconds to the first preview line, seconds to the final line, final answer)."""
    started = time.perf_counter()
    reply = session.post(
        gateway.url + "/api/v1/explain",
        files={"image": ("soccer.jpg", photo)},
        headers={"Accept": "application/x-ndjson"},
        stream=True,
        timeout=120,
    )
    reply.raise_for_status()
    first_preview = None
    final = None
    for raw in reply.iter_lines():
        if not raw:
            continue
        line = json.loads(raw)
        if "error" in line:
            raise RuntimeError(line["error"]["message"])
        if line.get("final") is False and first_preview is None:
            first_preview = time.perf_counter() - started
        if line.get("final") is True:
            final = line
    return first_preview, time.perf_counter() - started, final


def alternate(gateways: list[GatewayProcess], photo: bytes, runs: int):
    """Median (preview s, final s) per gateway, runs taken in turn, and the last answers."""
    sessions = [requests.Session() for _ in gateways]
    previews: list[list[float]] = [[] for _ in gateways]
    finals: list[list[float]] = [[] for _ in gateways]
    bodies: list[dict] = [{} for _ in gateways]
    for attempt in range(runs + 1):
        for k, gateway in enumerate(gateways):
            preview, final, bodies[k] = explain_streamed(sessions[k], gateway, photo)
            if attempt:  # the first is a warm-up
                previews[k].append(preview)
                finals[k].append(final)
    return [
        (statistics.median(p), statistics.median(f)) for p, f in zip(previews, finals, strict=True)
    ], bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-faithfulness", action="store_true")
    args = parser.parse_args()

    images_dir = gallery_dir()
    photo = (images_dir / "soccer.jpg").read_bytes()
    rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    windows = grids.make_grid(rgb.shape[1], rgb.shape[0])

    with (
        classifier_service("bench_explain_1") as first,
        classifier_service("bench_explain_2") as second,
        # One replica that may use both cores inside each inference.
        classifier_service("bench_explain_3", IC_ORT_THREADS="2") as wide,
        ServiceProcess("services.inpainter", health_service="ic.v1.Inpainter") as inpainter,
        ExplainerProcess(first.address, [inpainter.address]) as explainer_one,
        ExplainerProcess(wide.address, [inpainter.address]) as explainer_wide,
        # Two replicas: a call in flight for each (what IC_EXPLAIN_CLASSIFY_IN_FLIGHT
        # is for); the one-replica explainer keeps its automatic setting.
        ExplainerProcess(
            f"ipv4:{first.address},{second.address}",
            [inpainter.address],
            IC_EXPLAIN_CLASSIFY_IN_FLIGHT="2",
        ) as explainer_two,
        GatewayProcess(
            first.address, [inpainter.address], explainer=explainer_one.address
        ) as one_replica,
        GatewayProcess(
            first.address, [inpainter.address], explainer=explainer_two.address
        ) as two_replicas,
        GatewayProcess(
            first.address, [inpainter.address], explainer=explainer_wide.address
        ) as one_wide,
    ):
        (one, two, one_2t), (body, _, _) = alternate(
            [one_replica, two_replicas, one_wide], photo, args.runs
        )
        class_ids = [body["target"]["class_id"]] + [c["class_id"] for c in body["competitors"]]

        stub = classifier_pb2_grpc.ClassifierStub(open_channel(first.address))
        started = time.perf_counter()
        filled = inpainted_windows(rgb, windows)
        inpaint_s = time.perf_counter() - started
        brute_force_rpc(stub, filled[:BATCH], class_ids)  # warm-up
        edits_rpc(stub, rgb, filled[:BATCH], windows, class_ids)
        brute_s = statistics.median(brute_force_rpc(stub, filled, class_ids) for _ in range(3))
        edit_runs = [edits_rpc(stub, rgb, filled, windows, class_ids) for _ in range(3)]
        edits_s = statistics.median(seconds for seconds, _ in edit_runs)
        incremental = all(flag for _, flag in edit_runs)
        core_s = bare_core(filled, class_ids)

        print(
            f"explain, default grid: {windows.count} windows of {windows.window} px, "
            f"stride {windows.stride}, soccer 227x227, telea; one ONNX Runtime thread"
        )
        print("classifier's share, the same 169 inpainted windows, 16 a batch, in turn:")
        print(f"  (a) brute force, Classify RPC      {brute_s * 1e3:8.0f} ms  (median of 3)")
        print(f"      bare classifier core            {core_s * 1e3:8.0f} ms  (in this process)")
        bare_s = (inpaint_s + core_s) / 2
        print(
            f"      bare computation over 2 cores   {bare_s * 1e3:8.0f} ms  "
            f"(cv2.inpaint {inpaint_s * 1e3:.0f} + classifier core {core_s * 1e3:.0f}, halved)"
        )
        print(
            f"  (b) ClassifyEdits RPC              {edits_s * 1e3:8.0f} ms  "
            f"(incremental: {'yes' if incremental else 'no, every edit in full'})"
        )
        print(f"end to end, POST /api/v1/explain streamed (median of {args.runs}):")
        for label, (preview, final) in (
            ("1 classifier replica ", one),
            ("2 classifier replicas", two),
            ("1 replica, 2 threads ", one_2t),
        ):
            print(
                f"  (c) {label}  first preview {preview * 1e3:6.0f} ms, "
                f"final {final * 1e3:6.0f} ms  (preview at {preview / final:.2f}x)"
            )
        timing = body["timing_ms"]
        print(
            f"  explainer's own timing (1 replica, last run): classifier work "
            f"{timing['windows_classifier_work']:.0f} ms + inpainter work "
            f"{timing['windows_inpainter_work']:.0f} ms in a {timing['windows']:.0f} ms "
            f"window phase, {body['classify_calls']} ClassifyEdits calls"
        )
        best = min(one[1], two[1], one_2t[1])
        print("ratios and targets:")
        ratio = brute_s / edits_s
        print(
            f"  (a) / (b)                          {ratio:8.2f}x  "
            f"(target >= {TARGET_INCREMENTAL}x: {verdict(ratio >= TARGET_INCREMENTAL)})"
        )
        print(f"  end to end / bare over 2 cores     {one[1] / bare_s:8.2f}x")
        print(f"  1 replica / 2 replicas             {one[1] / two[1]:8.2f}x")
        print(f"  end to end under {TARGET_S:.0f} s               {verdict(best < TARGET_S)}")
        print(
            f"  first preview within {TARGET_PREVIEW}x of final  "
            f"{verdict(all(p / f <= TARGET_PREVIEW for p, f in (one, two, one_2t)))}"
        )

        if not args.no_faithfulness:
            deps = Dependencies(
                DependencySettings(
                    classifier_address=first.address, inpaint_addresses=[inpainter.address]
                )
            )
            paths = sorted(images_dir.glob("*.jpg"))
            started = time.perf_counter()
            rows = explain_folder(Explainer(deps), paths, "telea", target_rank=2)
            deps.close()
            print(
                f"\nfaithfulness, {len(paths)} gallery photos, target = each photo's "
                f"runner-up class ({time.perf_counter() - started:.1f} s):"
            )
            print(format_table(summarise([r for _, _, r in rows])))


if __name__ == "__main__":
    main()
