"""Inpainting quality and speed: our PatchMatch engine against OpenCV Telea and
Navier-Stokes, GIMP Resynthesizer and the PyPI package pypatchmatch.

    .venv/bin/python bench/bench_inpaint.py [--photos all|name,name] [--sizes 227,512]

On the nine gallery photos at 227 px and upscaled (Lanczos) to 512 px, with
three masks (a wavy 15 px brush stroke covering ~5% of the image, a centred
disk of 10%, a rectangle of 20%; the geometry scales with the image), every
method fills the hole once per photo (fixed seed) and the script prints, per
method x size x mask: the mean wall time, the hole's PSNR and mean absolute
error against the original pixels, and the ratios against our engine (time
and PSNR difference), then checks the targets: ours faster than Resynthesizer,
under 150 ms (227 px) and 1 s (512 px) for the disk, hole PSNR no worse than
Telea's. It writes side-by-side grids (original, mask, each method) to
artifacts/bench/inpaint_grid_<photo>_<size>.png.

pypatchmatch is installed on first use into build/bench-deps (not a project
dependency); if that fails the script says so and goes on without it.
Run `make native` first. The full run takes about 5 minutes on an idle 2-core
machine, mostly pypatchmatch at 512 px; `--photos lighthouse,soccer` or
`--skip pypatchmatch` make a quick one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from services.patchmatch.native import library_status, patchmatch_inpaint

REPO = Path(__file__).resolve().parents[1]
PHOTOS_DIR = REPO.parent / "shared" / "images"
PHOTOS = ("baseball", "sailboat", "lighthouse", "beach", "soccer")
PHOTOS += ("hockey", "hockey2", "skiing", "bank")
GRID_PHOTOS = ("lighthouse", "soccer")
BENCH_DEPS = REPO / "build" / "bench-deps"
ARTIFACTS = REPO / "artifacts" / "bench"
SEED = 0
OURS = "patchmatch"
TARGET_MS = {227: 150.0, 512: 1000.0}

Inpaint = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---- masks (True = remove) ---------------------------------------------------


def stroke_mask(size: int) -> np.ndarray:
    """A wavy horizontal brush stroke, 15 px wide at 227 px."""
    mask = np.zeros((size, size), np.uint8)
    xs = np.linspace(0.22 * size, 0.78 * size, 80)
    ys = size * (0.5 + 0.09 * np.sin((xs / size) * 3.0 * np.pi))
    points = np.stack([xs, ys], axis=1).round().astype(np.int32)
    cv2.polylines(mask, [points], False, 1, thickness=round(15 * size / 227))
    return mask.astype(bool)


def disk_mask(size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    radius = np.sqrt(0.10 * size * size / np.pi)
    return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2


def rect_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[int(0.45 * size) : int(0.85 * size), int(0.10 * size) : int(0.60 * size)] = True
    return mask


MASKS = {"stroke": stroke_mask, "disk": disk_mask, "rect": rect_mask}


# ---- methods -----------------------------------------------------------------


def opencv(flag: int) -> Inpaint:
    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, 3, flag)

    return run


def ours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return patchmatch_inpaint(image, mask, seed=SEED)


def resynthesizer_method() -> Inpaint | None:
    try:
        from resynthesizer import resynthesize
    except Exception as exc:  # a missing or broken wheel: benchmark the rest
        print(f"resynthesizer unavailable ({exc}); skipping it")
        return None

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = resynthesize(Image.fromarray(image), Image.fromarray(mask.astype(np.uint8) * 255))
        return np.asarray(out)

    return run


def pypatchmatch_method() -> Inpaint | None:
    """pypatchmatch from build/bench-deps, installed there on first use."""
    if str(BENCH_DEPS) not in sys.path:
        sys.path.append(str(BENCH_DEPS))
    try:
        import patchmatch  # noqa: F401
    except ImportError:
        print(f"installing pypatchmatch into {BENCH_DEPS} (benchmark only) ...", flush=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--target", str(BENCH_DEPS), "pypatchmatch"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"pypatchmatch could not be installed; skipping it:\n{result.stderr[-2000:]}")
            return None
    try:
        import patchmatch as pypatchmatch
    except Exception as exc:
        print(f"pypatchmatch cannot be imported ({exc}); skipping it")
        return None
    if not pypatchmatch.patchmatch_available:
        print("pypatchmatch's native library did not load; skipping it")
        return None

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        pypatchmatch.set_random_seed(SEED)
        return pypatchmatch.inpaint(image, mask.astype(np.uint8), patch_size=15)

    return run


def build_methods(skip: set[str]) -> dict[str, Inpaint]:
    methods: dict[str, Inpaint | None] = {
        "telea": opencv(cv2.INPAINT_TELEA),
        "navier-stokes": opencv(cv2.INPAINT_NS),
        OURS: ours,
        "resynthesizer": None if "resynthesizer" in skip else resynthesizer_method(),
        "pypatchmatch": None if "pypatchmatch" in skip else pypatchmatch_method(),
    }
    return {name: run for name, run in methods.items() if run is not None and name not in skip}


# ---- measuring ---------------------------------------------------------------


def load_photo(name: str, size: int) -> np.ndarray:
    image = Image.open(PHOTOS_DIR / f"{name}.jpg").convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(image))


def hole_scores(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    diff = out[mask].astype(np.float64) - truth[mask].astype(np.float64)
    mse = float(np.mean(diff**2))
    psnr = 10.0 * np.log10(255.0**2 / max(mse, 1e-12))
    return psnr, float(np.mean(np.abs(diff)))


def measure(methods, photos, sizes):
    """results[(method, size, mask)] = lists of ms, psnr, mae; outputs for the grids."""
    results: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    outputs: dict[tuple[str, int, str, str], np.ndarray] = {}
    broken: set[str] = set()
    warm = load_photo(photos[0], 227)
    for run in methods.values():  # load libraries, warm caches
        run(warm, disk_mask(227))
    for size in sizes:
        for mask_name, make_mask in MASKS.items():
            mask = make_mask(size)
            for photo in photos:
                image = load_photo(photo, size)
                for method, run in methods.items():
                    started = time.perf_counter()
                    out = run(image, mask)
                    elapsed_ms = (time.perf_counter() - started) * 1e3
                    if not np.array_equal(out[~mask], image[~mask]):
                        broken.add(method)
                    psnr, mae = hole_scores(out, image, mask)
                    row = results.setdefault((method, size, mask_name), {})
                    row.setdefault("ms", []).append(elapsed_ms)
                    row.setdefault("psnr", []).append(psnr)
                    row.setdefault("mae", []).append(mae)
                    if photo in GRID_PHOTOS:
                        outputs[(method, size, mask_name, photo)] = out
            coverage = 100.0 * mask.mean()
            print(f"  measured {size} px {mask_name} ({coverage:.1f}% of the image)", flush=True)
    for method in sorted(broken):
        print(f"WARNING: {method} changed pixels outside the mask")
    return results, outputs


# ---- reporting ---------------------------------------------------------------


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def print_table(results, methods, sizes) -> None:
    header = f"{'method':<14} {'size':>4} {'mask':<6} {'mean ms':>9} {'PSNR dB':>8} {'MAE':>6}"
    header += f" {'time/ours':>10} {'PSNR-ours':>10}"
    print("\n" + header)
    print("-" * len(header))
    for size in sizes:
        for mask_name in MASKS:
            base = results[(OURS, size, mask_name)]
            for method in methods:
                row = results[(method, size, mask_name)]
                ms, psnr, mae = mean(row["ms"]), mean(row["psnr"]), mean(row["mae"])
                ratio = ms / mean(base["ms"])
                delta = psnr - mean(base["psnr"])
                print(
                    f"{method:<14} {size:>4} {mask_name:<6} {ms:>9.1f} {psnr:>8.2f} {mae:>6.1f}"
                    f" {ratio:>9.2f}x {delta:>+10.2f}"
                )
            print()


def check_targets(results, methods, sizes) -> list[str]:
    lines = []
    for size in sizes:
        ours_ms = mean(results[(OURS, size, "disk")]["ms"])
        verdict = "met" if ours_ms < TARGET_MS[size] else "MISSED"
        lines.append(
            f"{size} px disk: ours {ours_ms:.0f} ms (target < {TARGET_MS[size]:.0f} ms): {verdict}"
        )
        if "resynthesizer" in methods:
            resynth_ms = mean(results[("resynthesizer", size, "disk")]["ms"])
            verdict = "met" if ours_ms < resynth_ms else "MISSED"
            lines.append(
                f"{size} px disk: Resynthesizer {resynth_ms:.0f} ms = {resynth_ms / ours_ms:.1f}x"
                f" ours (target: ours faster): {verdict}"
            )
        if "pypatchmatch" in methods:
            pypm_ms = mean(results[("pypatchmatch", size, "disk")]["ms"])
            lines.append(
                f"{size} px disk: pypatchmatch {pypm_ms:.0f} ms = {pypm_ms / ours_ms:.1f}x ours"
            )
    for size in sizes:
        for mask_name in MASKS:
            ours_psnr = mean(results[(OURS, size, mask_name)]["psnr"])
            telea_psnr = mean(results[("telea", size, mask_name)]["psnr"])
            verdict = "met" if ours_psnr >= telea_psnr else "MISSED"
            lines.append(
                f"{size} px {mask_name}: hole PSNR ours {ours_psnr:.2f} dB vs Telea "
                f"{telea_psnr:.2f} dB (target: no worse): {verdict}"
            )
    return lines


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with a white caption strip on top."""
    height = max(18, tile.shape[0] // 12)
    strip = np.full((height, tile.shape[1], 3), 255, np.uint8)
    scale = height / 30.0
    cv2.putText(
        strip,
        text,
        (4, int(height * 0.75)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.concatenate([strip, tile], axis=0)


def write_grids(outputs, methods, sizes, photos) -> list[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    written = []
    for photo in [p for p in GRID_PHOTOS if p in photos]:
        for size in sizes:
            image = load_photo(photo, size)
            rows = []
            for mask_name, make_mask in MASKS.items():
                mask = make_mask(size)
                shown = image.copy()
                shown[mask] = (255, 0, 255)
                tiles = [label(image, "original"), label(shown, f"mask: {mask_name}")]
                tiles += [label(outputs[(m, size, mask_name, photo)], m) for m in methods]
                rows.append(np.concatenate(tiles, axis=1))
            path = ARTIFACTS / f"inpaint_grid_{photo}_{size}.png"
            Image.fromarray(np.concatenate(rows, axis=0)).save(path)
            written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default="all", help="'all' or comma-separated names")
    parser.add_argument("--sizes", default="227,512")
    parser.add_argument("--skip", default="", help="methods to leave out, comma-separated")
    args = parser.parse_args()

    available, reason = library_status()
    if not available:
        print(reason)
        return 1
    photos = list(PHOTOS) if args.photos == "all" else args.photos.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size not in TARGET_MS for size in sizes):
        parser.error(f"sizes must be among {sorted(TARGET_MS)}")
    methods = build_methods({s for s in args.skip.split(",") if s} - {OURS, "telea"})
    print(f"methods: {', '.join(methods)}; photos: {', '.join(photos)}; sizes: {sizes}")

    results, outputs = measure(methods, photos, sizes)
    print_table(results, methods, sizes)
    for line in check_targets(results, methods, sizes):
        print(line)
    for path in write_grids(outputs, methods, sizes, photos):
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
