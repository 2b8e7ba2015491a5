"""Inpainting latency per engine, through gRPC against the bare engine call, and
InpaintMany's parallelism against one-by-one calls.

    .venv/bin/python bench/bench_inpaint_service.py [--iterations 20]

Prints, in one run, for every available engine of both services (telea,
navier-stokes, blur, mean; patchmatch, resynthesizer):
- p50 of the bare engine call in process (engine.inpaint on the 227x227
  lighthouse photo with a 49x47 hole over the kite), p50 of Inpaint through
  gRPC on the same input, and their ratio (the price of the service: transfer,
  decoding, the copy-back of kept pixels);
- for the engines of the patchmatch service, 16 sliding-window masks through
  one InpaintMany call against 16 Inpaint calls one after the other (the
  speed-up of the service's thread pool; at most the number of cores for
  PatchMatch, about 1 for Resynthesizer, whose calls are serialised).
Run `make native` first (the PatchMatch library).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from bench.timing import time_calls
from common.images import raw_image, raw_mask
from ic.v1 import inpainter_pb2
from services.inpainter.engines import build_registry as opencv_registry
from services.patchmatch.engines import build_registry as patchmatch_registry
from services.runtime.inpaint_engine import InpaintEngine
from tests.support.inpainting import KITE_HOLE, rect_mask, stub_for
from tests.support.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "images" / "lighthouse.jpg"
TIMEOUT = 120.0


def p50_ms(fn, iterations: int, warmup: int = 2) -> float:
    return float(np.median(time_calls(fn, iterations, warmup)))


def window_masks(width: int, height: int, count: int = 16, side: int = 48):
    """count square windows on a grid over the image, as rect masks."""
    per_row = int(np.ceil(np.sqrt(count)))
    step_x, step_y = (width - side) // (per_row - 1), (height - side) // (per_row - 1)
    return [
        rect_mask((i % per_row) * step_x, (i // per_row) * step_y, side, side) for i in range(count)
    ]


def bench_service(module: str, engines: list[InpaintEngine], rgb, mask, args) -> None:
    request_image = raw_image(rgb)
    request_mask = raw_mask(mask)
    with ServiceProcess(module, health_service="ic.v1.Inpainter", name=f"bench_{module}") as proc:
        stub = stub_for(proc.address)
        info = {e.name: e for e in stub.GetInfo(inpainter_pb2.GetInfoRequest()).engines}
        for engine in engines:
            if not info[engine.name].available:
                print(f"{engine.name:14s} unavailable: {info[engine.name].unavailable_reason}")
                continue
            params = engine.resolve_params({})
            bare = p50_ms(lambda e=engine, p=params: e.inpaint(rgb, mask, p, 0), args.iterations)
            request = inpainter_pb2.InpaintRequest(
                image=request_image, mask=request_mask, engine=engine.name
            )
            served = p50_ms(lambda r=request: stub.Inpaint(r, timeout=TIMEOUT), args.iterations)
            print(
                f"{engine.name:14s} bare {bare:8.2f} ms   gRPC {served:8.2f} ms   "
                f"ratio {served / bare:5.2f}x"
            )
            if module != "services.patchmatch":
                continue
            masks = window_masks(rgb.shape[1], rgb.shape[0])
            many = inpainter_pb2.InpaintManyRequest(
                image=request_image, masks=masks, engine=engine.name
            )
            one_by_one = [
                inpainter_pb2.InpaintRequest(image=request_image, mask=m, engine=engine.name)
                for m in masks
            ]
            rounds = max(1, args.iterations // 5)
            many_ms = p50_ms(lambda m=many: list(stub.InpaintMany(m, timeout=TIMEOUT)), rounds, 1)
            serial_ms = p50_ms(
                lambda rs=one_by_one: [stub.Inpaint(r, timeout=TIMEOUT) for r in rs], rounds, 1
            )
            print(
                f"{'':14s} {len(masks)} windows: InpaintMany {many_ms:8.1f} ms   "
                f"one by one {serial_ms:8.1f} ms   speed-up {serial_ms / many_ms:4.2f}x"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    rgb = np.ascontiguousarray(np.asarray(Image.open(PHOTO).convert("RGB")))
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    mask[KITE_HOLE] = True
    print(
        f"photo {PHOTO.name} {rgb.shape[1]}x{rgb.shape[0]}, hole {int(mask.sum())} px, "
        f"p50 of {args.iterations} calls"
    )
    bench_service("services.inpainter", opencv_registry().engines(), rgb, mask, args)
    bench_service("services.patchmatch", patchmatch_registry().engines(), rgb, mask, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
