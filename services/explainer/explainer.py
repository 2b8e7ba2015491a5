"""One explanation end to end, as a stream of events (no gRPC server here):
check the request, classify the photo's working copy, inpaint and reclassify
every window (coarse pass first), turn the probabilities into maps, and
optionally fix-it and the faithfulness numbers.

`explain()` yields Progress, Preview (the coarse pass's maps) and, last,
Finished; the server turns them into proto messages, and the faithfulness
command and the benchmark consume them directly.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from PIL import Image

from common.config import env_float, env_int
from common.errors import InvalidInput, ServiceCallFailed
from common.images import ImageLimits, decode_image, raw_image, raw_mask
from ic.v1 import classifier_pb2, inpainter_pb2
from services.explainer import core, grid
from services.explainer.calls import CancelScope, Deadline, PipelineSettings
from services.explainer.clients import Dependencies
from services.explainer.windows import BackendCursor, WindowRun, rect_mask

# Pixels coming back from our own services were checked by them already.
_NO_LIMITS = ImageLimits(max_side=1 << 30, max_pixels=1 << 62)


@dataclass(frozen=True)
class ExplainLimits:
    max_windows: int = 1024
    max_competitors: int = 10
    max_fix_fraction: float = 0.2
    # The maps (and fix-it's picture) come back at the request size shrunk to
    # this longest side: the page's largest working copy, and far finer than
    # any window.
    max_map_side: int = 512

    @classmethod
    def from_env(cls) -> ExplainLimits:
        return cls(
            max_windows=env_int("IC_EXPLAIN_MAX_WINDOWS", cls.max_windows),
            max_competitors=env_int("IC_EXPLAIN_MAX_COMPETITORS", cls.max_competitors),
            max_fix_fraction=env_float("IC_EXPLAIN_MAX_FIX_FRACTION", cls.max_fix_fraction),
            max_map_side=env_int("IC_EXPLAIN_MAX_MAP_SIDE", cls.max_map_side),
        )


@dataclass(frozen=True)
class ExplainOptions:
    target: int | None = None
    window: int | None = None
    stride: int | None = None
    competitors: int = 3
    fix: bool = False
    fix_fraction: float = 0.05
    faithfulness: bool = False
    backend: str | None = None
    model: str = ""
    preview: bool = False


@dataclass(frozen=True)
class ClassInfo:
    class_id: int
    label: str
    probability: float
    rank: int


def class_info(message: classifier_pb2.ClassProbability) -> ClassInfo:
    return ClassInfo(message.class_id, message.label, float(message.probability), message.rank)


@dataclass
class FixResult:
    """The counterfactual at the maps' size: the strongest hindering region removed."""

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
    top: list[ClassInfo]
    grid: grid.WindowGrid
    work_size: tuple[int, int]
    map_size: tuple[int, int]
    p_original: np.ndarray  # [1 + competitors]
    p_windows: np.ndarray  # [windows, 1 + competitors]
    top1_windows: np.ndarray  # [windows]
    engines: list[str]  # per window
    wanted_engine: str
    model: str
    num_classes: int  # the model's: K of the Laplace correction
    incremental: bool
    classify_calls: int
    maps: core.EvidenceMaps  # at map_size
    fix: FixResult | None = None
    faithfulness: object | None = None  # faithfulness.ImageFaithfulness
    timing_ms: dict[str, float] = field(default_factory=dict)

    def maps_at(self, size: tuple[int, int]) -> core.EvidenceMaps:
        return core.evidence_maps(
            self.grid.layout().at(size), self.p_original, self.p_windows, self.num_classes
        )

    def backends_used(self) -> list[tuple[str, int]]:
        """(engine, windows) of every engine that filled windows, most first."""
        return collections.Counter(self.engines).most_common()

    @property
    def engine(self) -> str:
        return self.backends_used()[0][0]

    @property
    def fallback(self) -> bool:
        return any(engine != self.wanted_engine for engine in self.engines)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class Preview:
    """Maps of the coarse pass: `windows` of the grid's windows, at the maps' size."""

    windows: int
    maps: core.EvidenceMaps
    target: ClassInfo
    competitors: list[ClassInfo]


@dataclass(frozen=True)
class Finished:
    explanation: Explanation


Event = Progress | Preview | Finished


def check_options(
    options: ExplainOptions, model: classifier_pb2.ModelInfo, limits: ExplainLimits
) -> None:
    """InvalidInput naming the first problem of the options (the grid aside)."""
    num_classes = model.num_classes
    if options.target is not None and not 0 <= options.target < num_classes:
        raise InvalidInput(f"target {options.target} is not a class id: use 0..{num_classes - 1}")
    if not 0 <= options.competitors <= limits.max_competitors:
        raise InvalidInput(
            f"competitors={options.competitors} is out of range 0..{limits.max_competitors}"
        )
    if not 0 < options.fix_fraction <= limits.max_fix_fraction:
        raise InvalidInput(
            f"fix_fraction={options.fix_fraction:g} is out of range: more than 0 "
            f"and at most {limits.max_fix_fraction:g}"
        )
    if options.faithfulness and not model.cam:
        raise InvalidInput(
            f"faithfulness compares with the target's CAM, and model {model.name!r} has "
            f"none ({model.cam_reason or 'no class activation maps'}); ask without faithfulness"
        )


def resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo at `size` (width, height): Pillow's bilinear, which widens its
    support when shrinking, as the classifier's own preprocessing does."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


class Explainer:
    """Explanations against the classifier and the inpainting backends of `deps`."""

    def __init__(
        self,
        deps: Dependencies,
        limits: ExplainLimits | None = None,
        settings: PipelineSettings | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.deps = deps
        self.limits = limits or ExplainLimits()
        self.settings = settings or PipelineSettings()
        self.metadata = tuple(metadata)

    def classify(
        self,
        rgb: np.ndarray,
        model: str,
        deadline: Deadline,
        top_k: int = 5,
        pinned: Sequence[int] = (),
        cams: Sequence[int] = (),
    ) -> classifier_pb2.ImageResult:
        request = classifier_pb2.ClassifyRequest(
            images=[raw_image(rgb)],
            top_k=top_k,
            pinned_class_ids=list(pinned),
            cam_class_ids=list(cams),
            model=model,
        )
        try:
            response = self.deps.classifier.Classify(
                request, timeout=deadline.timeout(), metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise ServiceCallFailed("classifier", exc) from exc
        return response.results[0]

    def classify_base(
        self,
        image,
        model: str,
        deadline: Deadline,
        top_k: int,
        pinned: Sequence[int],
    ) -> classifier_pb2.ImageResult:
        """The unedited working copy's classification, asked as ClassifyEdits with
        no edit: a classifier that computes edits incrementally keeps the base
        image's activations for the windows that follow."""
        request = classifier_pb2.ClassifyEditsRequest(
            model=model, base=image, include_base=True, top_k=top_k, pinned_class_ids=pinned
        )
        try:
            response = self.deps.classifier.ClassifyEdits(
                request, timeout=deadline.timeout(), metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise ServiceCallFailed("classifier", exc) from exc
        return response.base

    def explain(
        self,
        rgb: np.ndarray,
        options: ExplainOptions,
        scope: CancelScope,
        deadline: Deadline,
    ) -> Iterator[Event]:
        """The events of one explanation; the first is Progress(0, windows), yielded
        only once the request has been checked and the photo classified."""
        started = time.perf_counter()
        timing: dict[str, float] = {}
        height, width = rgb.shape[:2]
        info = self.deps.model_info(options.model, deadline, self.metadata)
        check_options(options, info, self.limits)
        # Every call asks the model by the name it answered to.
        model = info.name or options.model
        windows = grid.make_grid(
            width, height, options.window, options.stride, self.limits.max_windows
        )
        cursor = BackendCursor(self.deps.backends, options.backend)

        step = time.perf_counter()
        work_size = grid.working_size(width, height, info.input_short_side)
        work_rgb = resized(rgb, work_size)
        image = raw_image(work_rgb)
        result = self.classify_base(
            image,
            model,
            deadline,
            top_k=min(max(5, options.competitors + 1), info.num_classes),
            pinned=[] if options.target is None else [options.target],
        )
        top = [class_info(c) for c in result.top]
        target = top[0] if options.target is None else class_info(result.pinned[0])
        competitors = [c for c in top if c.class_id != target.class_id][: options.competitors]
        timing["classify_original"] = (time.perf_counter() - step) * 1e3
        yield Progress(0, windows.count)

        step = time.perf_counter()
        rects = windows.rects()
        work_rects = grid.covering_rects(rects, (width, height), work_size)
        size = grid.map_size(width, height, self.limits.max_map_side)
        on_maps = windows.layout().at(size)
        coarse = windows.coarse_indices() if options.preview else []
        if len(coarse) >= windows.count:
            coarse = []  # the grid is its own coarse pass: nothing earlier to show
        class_ids = [target.class_id] + [c.class_id for c in competitors]
        p_original = np.array([target.probability] + [c.probability for c in competitors])
        settings = self.settings.for_model(info.incremental, info.max_edits)
        run = WindowRun(
            self.deps.classifier,
            cursor,
            image,
            [rect_mask(*rect) for rect in work_rects],
            class_ids,
            model,
            settings,
            scope,
            deadline,
            self.metadata,
            first=coarse,
            max_masks=self.deps.max_masks(),
        )
        for kind, done in run.run():
            if kind == "progress":
                yield Progress(done, windows.count)
            elif kind == "first":
                maps = core.evidence_maps(
                    on_maps.subset(*windows.coarse_picks()),
                    p_original,
                    run.results.probabilities[coarse],
                    info.num_classes,
                )
                timing["first_preview"] = (time.perf_counter() - started) * 1e3
                yield Preview(len(coarse), maps, target, competitors)
        results = run.results
        timing["windows"] = (time.perf_counter() - step) * 1e3
        timing["windows_classifier_work"] = results.classifier_ms
        timing["windows_inpainter_work"] = results.inpainter_ms

        step = time.perf_counter()
        explanation = Explanation(
            target=target,
            competitors=competitors,
            top=top,
            grid=windows,
            work_size=work_size,
            map_size=size,
            p_original=p_original,
            p_windows=results.probabilities,
            top1_windows=results.top1,
            engines=results.engines,
            wanted_engine=cursor.wanted,
            model=model,
            num_classes=info.num_classes,
            incremental=results.incremental,
            classify_calls=results.classify_calls,
            maps=core.evidence_maps(on_maps, p_original, results.probabilities, info.num_classes),
        )
        timing["maps"] = (time.perf_counter() - step) * 1e3
        if options.fix:
            step = time.perf_counter()
            explanation.fix = self.fix(rgb, explanation, options.fix_fraction, deadline)
            timing["fix"] = (time.perf_counter() - step) * 1e3
        if options.faithfulness:
            from services.explainer.faithfulness import measure

            step = time.perf_counter()
            explanation.faithfulness = measure(self, work_rgb, explanation, scope, deadline)
            timing["faithfulness"] = (time.perf_counter() - step) * 1e3
        timing["total"] = (time.perf_counter() - started) * 1e3
        explanation.timing_ms = timing
        yield Finished(explanation)

    def explanation(
        self, rgb: np.ndarray, options: ExplainOptions, deadline: Deadline | None = None
    ) -> Explanation:
        """explain() run to the end: the Explanation alone."""
        for event in self.explain(rgb, options, CancelScope(), deadline or Deadline.after(300)):
            if isinstance(event, Finished):
                return event.explanation
        raise RuntimeError("the explanation ended without a result")

    def fix(
        self, rgb: np.ndarray, explanation: Explanation, fix_fraction: float, deadline: Deadline
    ) -> FixResult:
        """Inpaint the strongest hindering region (at most fix_fraction of the
        image) of the photo at the maps' size and reclassify it: does the target
        rise, does it become top-1? The engine is the explanation's own."""
        mask = core.strongest_region_mask(explanation.maps.hinder, fix_fraction)
        if not mask.any():
            return FixResult(mask, None, None, None, explanation.engine)
        picture = resized(rgb, explanation.map_size)
        request = inpainter_pb2.InpaintRequest(image=raw_image(picture), mask=raw_mask(mask))

        def attempt(stub, engine: str):
            request.engine = engine
            return stub.Inpaint(request, timeout=deadline.timeout(), metadata=self.metadata)

        outcome = self.deps.backends.call(explanation.engine, attempt)
        fixed = decode_image(outcome.response.image, _NO_LIMITS, what="fixed image")
        result = self.classify(
            fixed, explanation.model, deadline, top_k=1, pinned=[explanation.target.class_id]
        )
        return FixResult(
            mask, fixed, class_info(result.pinned[0]), class_info(result.top[0]), outcome.engine
        )
