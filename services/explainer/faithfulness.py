"""How faithful are the maps? Compare them with baselines on the model itself.

Two tests, per image, each against baselines of equal area:

1. Removal (the fix-it question). Remove (inpaint) the top q% of pixels by the
   `hinder` map, q in REMOVAL_FRACTIONS, and reclassify: how much does
   p(target) rise, and does the target become top-1? Baselines: random regions
   (random blocks of the explanation's stride, thresholded the same way) and
   the CAM's least-activated q% for the target (the naive "what the model does
   not look at" guess). A faithful hinder map raises p(target) more.
2. Deletion and insertion curves (Petsiuk et al. 2018, RISE) for `support`,
   against the target's CAM and a random map. Deletion replaces the top f of
   pixels by a blurred copy of the image, f = 0, 0.1, ..., 1, and records
   p(target): a faithful evidence map makes it fall fast (low area under the
   curve). Insertion starts from the blurred copy and puts the top f of the
   original pixels back: p(target) should rise fast (high area). Blurring
   rather than inpainting keeps the 66 images per image cheap and identical
   for every map.

Both run on the explanation's working copy (the picture the classifier saw).
`python -m services.explainer.faithfulness --images DIR` runs both over a
folder (talking to the classifier and the inpainters over gRPC) and prints one
table; the HTTP API adds the same numbers for one image with `faithfulness=true`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from common.images import ImageLimits, decode_encoded_rgb, raw_image, raw_mask
from services.explainer import core
from services.explainer.calls import CancelScope, Deadline, classify_images
from services.explainer.explainer import Explainer, ExplainOptions, Explanation, resized
from services.explainer.windows import BackendCursor, WindowRun

REMOVAL_FRACTIONS = (0.01, 0.02, 0.05, 0.10, 0.20)
REMOVAL_METHODS = ("hinder", "random", "cam_least")
CURVE_FRACTIONS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2).tolist())
CURVE_METHODS = ("support", "cam", "random")
# Deletion/insertion substitute: a Gaussian blur with sigma 5% of the shorter side.
BLUR_SIGMA_FRACTION = 0.05


@dataclass
class Removal:
    fraction: float
    p_target: float
    rise: float
    top1_is_target: bool


@dataclass
class ImageFaithfulness:
    target_id: int
    p_target: float
    removal: dict[str, list[Removal]] = field(default_factory=dict)
    deletion: dict[str, list[float]] = field(default_factory=dict)
    insertion: dict[str, list[float]] = field(default_factory=dict)

    def deletion_auc(self, method: str) -> float:
        return auc(self.deletion[method])

    def insertion_auc(self, method: str) -> float:
        return auc(self.insertion[method])

    def to_json(self) -> dict:
        return {
            "target_id": self.target_id,
            "p_target": self.p_target,
            "removal": {
                method: [vars(row) for row in rows] for method, rows in self.removal.items()
            },
            "curve_fractions": list(CURVE_FRACTIONS),
            "deletion": {m: {"p_target": c, "auc": auc(c)} for m, c in self.deletion.items()},
            "insertion": {m: {"p_target": c, "auc": auc(c)} for m, c in self.insertion.items()},
        }


def auc(curve: list[float]) -> float:
    """Area under p(target) over the fraction 0..1 (trapezoid rule)."""
    return float(np.trapezoid(curve, CURVE_FRACTIONS))


def blurred(rgb: np.ndarray) -> np.ndarray:
    sigma = max(1.0, BLUR_SIGMA_FRACTION * min(rgb.shape[:2]))
    # Pillow rather than OpenCV: the gateway image need not carry OpenCV for this.
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def target_cam(
    explainer: Explainer, rgb: np.ndarray, target: int, model: str, deadline: Deadline
) -> np.ndarray:
    """The target's class activation map, HxW uint8 (255 = most activated)."""
    cam = explainer.classify(rgb, model, deadline, top_k=1, cams=[target]).cams[0]
    return np.frombuffer(cam.data, dtype=np.uint8).reshape(cam.height, cam.width)


def measure(
    explainer: Explainer,
    rgb: np.ndarray,
    explanation: Explanation,
    scope: CancelScope | None = None,
    deadline: Deadline | None = None,
    seed: int = 0,
) -> ImageFaithfulness:
    """Both tests for one image (its working copy, `rgb`) and its explanation."""
    scope = scope or CancelScope()
    deadline = deadline or Deadline.after(300)
    height, width = rgb.shape[:2]
    target = explanation.target.class_id
    model = explanation.model
    cam = target_cam(explainer, rgb, target, model, deadline).astype(np.float64)
    maps = explanation.maps_at((width, height))
    # Random regions as coarse as the map's own steps (the stride, at this size).
    block = max(1, round(explanation.grid.stride * width / explanation.grid.width))
    result = ImageFaithfulness(target, explanation.target.probability)

    removal_scores = {
        "hinder": maps.hinder,
        "random": core.random_block_map(width, height, block, seed),
        "cam_least": 255.0 - cam,
    }
    plan = [(m, q) for m in REMOVAL_METHODS for q in REMOVAL_FRACTIONS]
    masks = [raw_mask(core.top_fraction_mask(removal_scores[m], q, seed=seed)) for m, q in plan]
    run = WindowRun(
        explainer.deps.classifier,
        BackendCursor(explainer.deps.backends, explanation.engine),
        raw_image(rgb),
        masks,
        [target],
        model,
        explainer.settings.for_model(explanation.incremental),
        scope,
        deadline,
        explainer.metadata,
    )
    for _ in run.run():
        pass
    removed = run.results
    for i, (method, q) in enumerate(plan):
        p = float(removed.probabilities[i, 0])
        result.removal.setdefault(method, []).append(
            Removal(q, p, p - result.p_target, bool(removed.top1[i] == target))
        )

    ranking = {
        "support": maps.support,
        "cam": cam,
        "random": core.random_block_map(width, height, block, seed + 1),
    }
    canvas = blurred(rgb)
    images = []
    for method in CURVE_METHODS:
        tops = [core.top_fraction_mask(ranking[method], f, seed=seed) for f in CURVE_FRACTIONS]
        images += [raw_image(np.where(m[..., None], canvas, rgb)) for m in tops]
        images += [raw_image(np.where(m[..., None], rgb, canvas)) for m in tops]
    curves = classify_images(
        explainer.deps.classifier,
        images,
        [target],
        model,
        explainer.settings.for_model(incremental=False),  # whole images: Classify
        scope,
        deadline,
        explainer.metadata,
    ).probabilities[:, 0]
    steps = len(CURVE_FRACTIONS)
    for k, method in enumerate(CURVE_METHODS):
        start = 2 * k * steps
        result.deletion[method] = curves[start : start + steps].tolist()
        result.insertion[method] = curves[start + steps : start + 2 * steps].tolist()
    return result


@dataclass
class Summary:
    """Means over images: the table the command prints."""

    images: int
    # method -> fraction -> (mean rise of p(target), share whose top-1 became the target)
    removal: dict[str, dict[float, tuple[float, float]]]
    deletion_auc: dict[str, float]
    insertion_auc: dict[str, float]


def summarise(results: list[ImageFaithfulness]) -> Summary:
    removal: dict[str, dict[float, tuple[float, float]]] = {}
    for method in REMOVAL_METHODS:
        removal[method] = {}
        for i, q in enumerate(REMOVAL_FRACTIONS):
            rows = [r.removal[method][i] for r in results]
            removal[method][q] = (
                float(np.mean([row.rise for row in rows])),
                float(np.mean([row.top1_is_target for row in rows])),
            )
    return Summary(
        images=len(results),
        removal=removal,
        deletion_auc={
            m: float(np.mean([r.deletion_auc(m) for r in results])) for m in CURVE_METHODS
        },
        insertion_auc={
            m: float(np.mean([r.insertion_auc(m) for r in results])) for m in CURVE_METHODS
        },
    )


def format_table(summary: Summary) -> str:
    lines = [
        f"Removal of the top q% pixels (inpainted), mean over {summary.images} images:",
        "  mean rise of p(target) / share of images whose top-1 became the target",
        "  method     " + "".join(f"{f'q={q:.0%}':>17}" for q in REMOVAL_FRACTIONS),
    ]
    for method in REMOVAL_METHODS:
        cells = "".join(
            f"{rise:>+10.4f} / {share:>4.0%}" for rise, share in summary.removal[method].values()
        )
        lines.append(f"  {method:<10} {cells}")
    lines += [
        "Deletion (lower is better) and insertion (higher is better) AUC of p(target):",
        "  map        deletion  insertion",
    ]
    for method in CURVE_METHODS:
        lines.append(
            f"  {method:<10} {summary.deletion_auc[method]:>8.4f}  "
            f"{summary.insertion_auc[method]:>9.4f}"
        )
    return "\n".join(lines)


def explain_folder(
    explainer: Explainer,
    paths: list,
    backend: str | None,
    target_rank: int,
    window: int | None = None,
    stride: int | None = None,
    seed: int = 0,
) -> list[tuple[str, Explanation, ImageFaithfulness]]:
    """Explain and measure every image; the target is each image's rank-`target_rank` class."""
    rows = []
    for path in paths:
        rgb = decode_encoded_rgb(path.read_bytes(), ImageLimits(), what=str(path))
        options = ExplainOptions(window=window, stride=stride, backend=backend)
        top = explainer.classify(rgb, options.model, Deadline.after(60), top_k=target_rank).top
        options = replace(options, target=top[target_rank - 1].class_id)
        explanation = explainer.explanation(rgb, options)
        work_rgb = resized(rgb, explanation.work_size)
        rows.append((path.name, explanation, measure(explainer, work_rgb, explanation, seed=seed)))
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    from common.channels import grpc_target
    from common.config import env_str
    from services.explainer.clients import Dependencies, DependencySettings

    parser = argparse.ArgumentParser(
        prog="python -m services.explainer.faithfulness",
        description="Faithfulness of undesirable-pixels maps over a folder of images.",
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of .jpg/.png/.webp")
    parser.add_argument(
        "--classifier",
        default=env_str("IC_CLASSIFIER_ADDR", "dns:///localhost:50051"),
        help="classifier gRPC address (default $IC_CLASSIFIER_ADDR)",
    )
    parser.add_argument(
        "--inpainter",
        default=env_str("IC_INPAINT_BACKENDS", "dns:///localhost:50052"),
        help="inpainting services, comma-separated (default $IC_INPAINT_BACKENDS)",
    )
    parser.add_argument("--backend", default="telea", help="inpainting engine (default telea)")
    parser.add_argument(
        "--target-rank",
        type=int,
        default=2,
        help="explain each image's rank-R class (default 2: the runner-up, so that "
        "'top-1 became the target' is a real question)",
    )
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write per-image results")
    args = parser.parse_args(argv)

    paths = sorted(
        p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    )
    if not paths:
        parser.error(f"no images in {args.images}")
    if not 1 <= args.target_rank <= 10:
        parser.error("--target-rank must be 1..10")
    deps = Dependencies(
        DependencySettings(
            classifier_address=grpc_target(args.classifier),
            inpaint_addresses=[grpc_target(a) for a in args.inpainter.split(",") if a.strip()],
            default_backend=args.backend,
            info_timeout_s=30.0,
        )
    )
    try:
        rows = explain_folder(
            Explainer(deps),
            paths,
            args.backend,
            args.target_rank,
            args.window,
            args.stride,
            args.seed,
        )
    finally:
        deps.close()
    for name, explanation, _ in rows:
        t = explanation.target
        print(f"{name}: target {t.label!r} (rank {t.rank}, p={t.probability:.4f})")
    print(format_table(summarise([r for _, _, r in rows])))
    if args.json:
        args.json.write_text(json.dumps({name: r.to_json() for name, _, r in rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
