"""One explanation end to end, against the gRPC stubs (no Flask): classify the
original, build the grid, inpaint and reclassify every window (pipeline.py),
turn the probabilities into maps (core.py), and optionally the fix-it
counterfactual. Used by the HTTP blueprint, the faithfulness command and the
benchmark alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from common.config import env_float, env_int
from common.errors import InvalidInput
from common.images import ImageLimits, decode_image, raw_image, raw_mask
from gateway.explain import core
from gateway.explain.pipeline import (
    CancelScope,
    PipelineSettings,
    Progress,
    rect_mask,
    window_probabilities,
)
from ic.v1 import classifier_pb2, image_pb2, inpainter_pb2

Metadata = Callable[[], Sequence[tuple[str, str]]]
# Images coming back from our own services were checked by them already.
_NO_LIMITS = ImageLimits(max_side=1 << 30, max_pixels=1 << 62)


@dataclass(frozen=True)
class ExplainLimits:
    max_windows: int = 1024
    max_competitors: int = 10
    max_fix_fraction: float = 0.2

    @classmethod
    def from_env(cls) -> ExplainLimits:
        return cls(
            max_windows=env_int("IC_EXPLAIN_MAX_WINDOWS", cls.max_windows),
            max_competitors=env_int("IC_EXPLAIN_MAX_COMPETITORS", cls.max_competitors),
            max_fix_fraction=env_float("IC_EXPLAIN_MAX_FIX_FRACTION", cls.max_fix_fraction),
        )


@dataclass(frozen=True)
class ExplainOptions:
    target: int | None = None
    window: int | None = None
    stride: int | None = None
    competitors: int = 3
    fix: bool = False
    fix_fraction: float = 0.05


@dataclass(frozen=True)
class ClassInfo:
    class_id: int
    label: str
    probability: float
    rank: int


@dataclass
class FixResult:
    """The counterfactual: the strongest hindering region removed, reclassified."""

    mask: np.ndarray  # HxW bool, True = removed
    image: np.ndarray | None  # HxWx3 uint8, None when no region hinders the target
    target: ClassInfo | None
    top1: ClassInfo | None
    engine: str

    @property
    def became_top1(self) -> bool:
        return self.target is not None and self.target.rank == 1


@dataclass
class Explanation:
    target: ClassInfo
    competitors: list[ClassInfo]
    grid: core.WindowGrid
    maps: core.EvidenceMaps
    top: list[ClassInfo]
    engine: str
    fix: FixResult | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)


def class_info(message: classifier_pb2.ClassProbability) -> ClassInfo:
    return ClassInfo(message.class_id, message.label, float(message.probability), message.rank)


class Explainer:
    """Explanations against a classifier stub; the inpainter stub and engine are
    chosen per call (the gateway's backend registry picks them)."""

    def __init__(
        self,
        classifier,
        num_classes: int,
        settings: PipelineSettings | None = None,
        limits: ExplainLimits | None = None,
        metadata: Metadata = tuple,
    ) -> None:
        self.classifier = classifier
        self.num_classes = num_classes
        self.settings = settings or PipelineSettings()
        self.limits = limits or ExplainLimits()
        self.metadata = metadata

    # -- checks, before any work -------------------------------------------

    def check(self, options: ExplainOptions, width: int, height: int) -> core.WindowGrid:
        """The grid of a request; InvalidInput naming the first problem."""
        if options.target is not None and not 0 <= options.target < self.num_classes:
            raise InvalidInput(
                f"target {options.target} is not a class id: use 0..{self.num_classes - 1}"
            )
        if not 0 <= options.competitors <= self.limits.max_competitors:
            raise InvalidInput(
                f"competitors={options.competitors} is out of range "
                f"0..{self.limits.max_competitors}"
            )
        if not 0 < options.fix_fraction <= self.limits.max_fix_fraction:
            raise InvalidInput(
                f"fix_fraction={options.fix_fraction} is out of range: more than 0 "
                f"and at most {self.limits.max_fix_fraction}"
            )
        return core.make_grid(
            width, height, options.window, options.stride, self.limits.max_windows
        )

    # -- the steps -----------------------------------------------------------

    def classify_original(
        self, image: image_pb2.Image, target: int | None, competitors: int, cam: bool = False
    ) -> tuple[ClassInfo, list[ClassInfo], list[ClassInfo], classifier_pb2.ImageResult]:
        """(target, competitors, top classes, raw result) of the unedited image."""
        request = classifier_pb2.ClassifyRequest(
            images=[image],
            top_k=max(5, competitors + 1),
            pinned_class_ids=[] if target is None else [target],
        )
        response = self.classifier.Classify(
            request, timeout=self.settings.timeout_s, metadata=tuple(self.metadata())
        )
        result = response.results[0]
        top = [class_info(c) for c in result.top]
        chosen = top[0] if target is None else class_info(result.pinned[0])
        others = [c for c in top if c.class_id != chosen.class_id][:competitors]
        return chosen, others, top, result

    def explain(
        self,
        rgb: np.ndarray,
        options: ExplainOptions,
        inpainter,
        engine: str,
        scope: CancelScope | None = None,
        progress: Progress | None = None,
    ) -> Explanation:
        height, width = rgb.shape[:2]
        grid = self.check(options, width, height)
        scope = scope or CancelScope()
        timing: dict[str, float] = {}
        started = time.perf_counter()
        image = raw_image(rgb)
        target, competitors, top, _ = self.classify_original(
            image, options.target, options.competitors
        )
        timing["classify_original"] = (time.perf_counter() - started) * 1e3

        step = time.perf_counter()
        class_ids = [target.class_id] + [c.class_id for c in competitors]
        masks = [rect_mask(*rect) for rect in grid.rects()]
        windows = window_probabilities(
            self.classifier,
            inpainter,
            image,
            masks,
            class_ids,
            engine,
            scope,
            self.settings,
            progress,
            tuple(self.metadata()),
        )
        timing["windows"] = (time.perf_counter() - step) * 1e3
        timing["windows_classifier_work"] = windows.classifier_ms
        timing["windows_inpainter_work"] = windows.inpainter_ms

        step = time.perf_counter()
        p_original = np.array([target.probability] + [c.probability for c in competitors])
        maps = core.evidence_maps(grid, p_original, windows.probabilities)
        timing["maps"] = (time.perf_counter() - step) * 1e3

        explanation = Explanation(target, competitors, grid, maps, top, engine)
        if options.fix:
            step = time.perf_counter()
            explanation.fix = self.fix(rgb, image, maps.hinder, target, options, inpainter, engine)
            timing["fix"] = (time.perf_counter() - step) * 1e3
        timing["total"] = (time.perf_counter() - started) * 1e3
        explanation.timing_ms = timing
        return explanation

    def fix(
        self,
        rgb: np.ndarray,
        image: image_pb2.Image,
        hinder: np.ndarray,
        target: ClassInfo,
        options: ExplainOptions,
        inpainter,
        engine: str,
    ) -> FixResult:
        """Inpaint the strongest hindering region (at most fix_fraction of the
        image) and reclassify: does the target rise, does it become top-1?"""
        mask = core.strongest_region_mask(hinder, options.fix_fraction)
        if not mask.any():
            return FixResult(mask, None, None, None, engine)
        metadata = tuple(self.metadata())
        answer = inpainter.Inpaint(
            inpainter_pb2.InpaintRequest(image=image, mask=raw_mask(mask), engine=engine),
            timeout=self.settings.timeout_s,
            metadata=metadata,
        )
        fixed = decode_image(answer.image, _NO_LIMITS, what="fixed image")
        response = self.classifier.Classify(
            classifier_pb2.ClassifyRequest(
                images=[answer.image], top_k=1, pinned_class_ids=[target.class_id]
            ),
            timeout=self.settings.timeout_s,
            metadata=metadata,
        )
        result = response.results[0]
        return FixResult(
            mask, fixed, class_info(result.pinned[0]), class_info(result.top[0]), answer.engine
        )
