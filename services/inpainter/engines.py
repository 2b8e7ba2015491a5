"""The OpenCV inpainting engines: the fast, deterministic fills.

Telea and Navier-Stokes are OpenCV's own diffusion-style inpainting. "blur" and
"mean" are the baselines explanation research compares against (the removed
region replaced by a heavily blurred version of its surroundings, or by a mean
colour): they carry no structure at all, which is the point of a baseline.

Every engine gets a mask with both removed and kept pixels and may touch any
pixel; `run_engine` copies the kept pixels back afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from services.runtime.inpaint_engine import (
    EngineParam,
    EngineRegistry,
    InpaintEngine,
    Reach,
    StopSignal,
)

RADIUS = EngineParam(
    "radius",
    "Radius in pixels of the neighbourhood each filled pixel is computed from.",
    default=3,
    min=1,
    max=50,
    integer=True,
)


class _OpenCvInpaint(InpaintEngine):
    flag: int

    params = (RADIUS,)

    def reach(self, params: Mapping[str, float]) -> Reach:
        # Each filled pixel averages its neighbours within `radius`, known or
        # already filled: what it reads is a band of about twice that round the
        # hole (a crop grown by radius + 1 gives bit-identical fills; tested).
        return Reach(pixels=2 * int(params["radius"]) + 2, whole_image=False)

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        # cv2.inpaint treats the three channels alike, so RGB needs no conversion.
        hole = mask.astype(np.uint8) * 255
        return cv2.inpaint(np.ascontiguousarray(image), hole, params["radius"], self.flag)


class TeleaEngine(_OpenCvInpaint):
    name = "telea"
    description = (
        "OpenCV, Telea 2004: fast marching from the hole's border inwards, each pixel a "
        "weighted average of its known neighbours. Smooth, fast, deterministic."
    )
    flag = cv2.INPAINT_TELEA


class NavierStokesEngine(_OpenCvInpaint):
    name = "navier-stokes"
    description = (
        "OpenCV, Bertalmio et al. 2001: propagates the isophotes (lines of equal "
        "brightness) into the hole like a fluid. Smooth, deterministic."
    )
    flag = cv2.INPAINT_NS


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


class BlurEngine(InpaintEngine):
    """Normalized convolution: blur(image * known) / blur(known), so the removed
    pixels' own colours never leak into the fill."""

    name = "blur"
    description = (
        "Baseline: the hole filled with a heavily blurred version of the known pixels "
        "around it (Gaussian, normalized so removed pixels do not leak in)."
    )
    params = (
        EngineParam(
            "sigma",
            "Standard deviation of the Gaussian blur in pixels; larger holes get wider "
            "blurs automatically where the given one does not reach known pixels.",
            default=16,
            min=1,
            max=100,
        ),
    )

    # Where a blur of the known pixels carries less weight than this, the pixel is
    # too far from any known pixel and a wider blur is tried.
    MIN_WEIGHT = 1e-4
    WIDENINGS = 4

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        known = (~mask).astype(np.float32)
        weighted = image.astype(np.float32) * known[..., None]
        fill = np.zeros(image.shape, dtype=np.float32)
        missing = mask.copy()
        sigma = float(params["sigma"])
        for _ in range(self.WIDENINGS):
            total = cv2.GaussianBlur(weighted, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            weight = cv2.GaussianBlur(known, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            reached = missing & (weight > self.MIN_WEIGHT)
            fill[reached] = total[reached] / weight[reached][:, None]
            missing &= ~reached
            if not missing.any():
                break
            sigma *= 4
        if missing.any():  # a hole wider than every blur tried: its mean colour
            fill[missing] = image[~mask].mean(axis=0)
        return _to_uint8(fill)


class MeanEngine(InpaintEngine):
    name = "mean"
    description = (
        "Baseline: the hole filled with one flat colour, the mean of the image's known "
        "pixels, or with ring > 0 the mean of the known pixels within that many pixels of "
        "each separate hole."
    )
    params = (
        EngineParam(
            "ring",
            "0: the mean colour of all known pixels of the image; N > 0: each connected "
            "hole gets the mean of the known pixels at most N pixels away from it.",
            default=0,
            min=0,
            max=256,
            integer=True,
        ),
    )

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        image_mean = image[~mask].mean(axis=0)
        output = image.astype(np.float32)
        ring = int(params["ring"])
        if ring == 0:
            output[mask] = image_mean
            return _to_uint8(output)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8
        )
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * ring + 1, 2 * ring + 1))
        height, width = mask.shape
        for label in range(1, count):
            x, y, w, h = stats[label, :4]
            # Work in the hole's bounding box grown by the ring, not the whole image.
            x0, y0 = max(0, x - ring), max(0, y - ring)
            x1, y1 = min(width, x + w + ring), min(height, y + h + ring)
            hole = labels[y0:y1, x0:x1] == label
            around = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool)
            around &= ~mask[y0:y1, x0:x1]
            colours = image[y0:y1, x0:x1][around]
            crop = output[y0:y1, x0:x1]
            crop[hole] = colours.mean(axis=0) if len(colours) else image_mean
        return _to_uint8(output)


# The table of this service's engines: add a class above and list it here.
ENGINES: tuple[type[InpaintEngine], ...] = (TeleaEngine, NavierStokesEngine, BlurEngine, MeanEngine)
DEFAULT_ENGINE = "telea"


def build_registry(default: str = DEFAULT_ENGINE, disabled: tuple[str, ...] = ()) -> EngineRegistry:
    return EngineRegistry("inpainter", (cls() for cls in ENGINES), default, disabled)
