"""Incremental ClassifyEdits for one served model: whether it is used, and why.

`IncrementalEdits.for_model(prepared, preprocessor, settings)` builds the
model's `IncrementalEngine` (services/classifier/incremental/) on the graph as
served, output the scores, with the service's ONNX Runtime thread count and
the service's one base-activation cache, and decides:

- not for an NHWC card: the engine works on channels-first maps (an NHWC
  graph turns its input around with a Transpose, which it does not run
  either);
- not when the engine cannot run the graph: its reason, e.g. "operator
  Sigmoid is not supported";
- not when it would not pay. The measure is the convolution multiply-adds on
  the reference workload: the explainer's default grid (48 px windows, stride
  16, 169 windows) on a 227x227 photo, mapped through the card's resize and
  crop. The engine must do at most 1 / `min_saving` of what full inference
  does (IC_INCREMENTAL_MIN_SAVING, default 2). Measured with
  bench/bench_incremental.py on the shared 2-core machine, one thread:
  SqueezeNet 1.1 saves 2.59x of the multiply-adds and runs 1.8-2.2x faster
  (1.6-1.9x through gRPC); EfficientNet-Lite0 saves 1.55x and runs 1.0-1.2x
  faster, within the noise, for a second copy of every activation in memory.
  Time follows the count at 0.7-0.8 of it. A count of multiply-adds is the
  same on every machine and at every start, unlike a timing taken while the
  service starts next to other work.

`scores(base, edits)` then gives the scores of the base and of every edit, or
None when the model does not use the engine or this base image cannot run
incrementally (the engine's shape checks; logged with the reason): the caller
then runs the edits in full.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from services.classifier.core import EditScores, ModelSettings
from services.classifier.edits import ImageEdit
from services.classifier.incremental import IncrementalEngine, edit_patches, network_rect
from services.classifier.incremental.plan import NotIncremental
from services.classifier.model_graph import PreparedModel
from services.classifier.preprocess import Geometry, Preprocessor

log = logging.getLogger("classifier")

# The reference workload: the explainer's default grid on a gallery photo.
REFERENCE_SIDE = 227
REFERENCE_WINDOW = 48
REFERENCE_STRIDE = 16


def reference_windows(side: int = REFERENCE_SIDE) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of every window of the default grid on a side x side image."""
    last = side - REFERENCE_WINDOW
    starts = list(range(0, last + 1, REFERENCE_STRIDE))
    if starts[-1] != last:
        starts.append(last)
    return [(x, y, REFERENCE_WINDOW, REFERENCE_WINDOW) for y in starts for x in starts]


class IncrementalEdits:
    def __init__(
        self,
        preprocessor: Preprocessor,
        engine: IncrementalEngine | None,
        reason: str,
        saving: float | None = None,
    ) -> None:
        self.preprocessor = preprocessor
        # None when the model runs its edits in full; `reason` says why.
        self.engine = engine
        self.reason = reason
        # Full inference's multiply-adds over the engine's on the reference workload.
        self.saving = saving
        self.reference = preprocessor.geometry(REFERENCE_SIDE, REFERENCE_SIDE)

    @property
    def enabled(self) -> bool:
        return self.engine is not None

    @classmethod
    def for_model(
        cls, prepared: PreparedModel, preprocessor: Preprocessor, settings: ModelSettings
    ) -> IncrementalEdits:
        if prepared.input.layout != "NCHW":
            return cls(
                preprocessor,
                None,
                f"the input is {prepared.input.layout}: incremental inference works on "
                "channels-first (NCHW) maps",
            )
        engine = IncrementalEngine(
            prepared.model,
            prepared.input.name,
            prepared.scores_output,
            threads=settings.intra_op_threads,
            cache=settings.base_cache,
        )
        if not engine.supported:
            return cls(preprocessor, None, f"the graph cannot run incrementally: {engine.reason}")
        geometry = preprocessor.geometry(REFERENCE_SIDE, REFERENCE_SIDE)
        try:
            saving = reference_saving(engine, geometry, preprocessor.channels)
        except NotIncremental as exc:
            return cls(
                preprocessor, None, f"the graph cannot run incrementally at its usual size: {exc}"
            )
        if saving < settings.incremental_min_saving:
            return cls(
                preprocessor,
                None,
                f"not worth it: on the reference windows (48 px, stride 16, on a "
                f"{REFERENCE_SIDE} px photo) the engine would still do {1 / saving:.0%} of "
                f"full inference's multiply-adds, a {saving:.2f}x saving; it is used from "
                f"{settings.incremental_min_saving:g}x (IC_INCREMENTAL_MIN_SAVING)",
                saving,
            )
        return cls(preprocessor, engine, "", saving)

    def warm_up(self) -> None:
        """Build the engine's tails and first runs at the usual network input size."""
        if self.engine is not None:
            width, height = self.reference.network_size
            self.engine.warm_up(height, width)

    def scores(self, base: np.ndarray, edits: Sequence[ImageEdit], chunk: int) -> EditScores | None:
        """Scores of `base` and of each edit, `chunk` edits' patches at a time
        (memory stays bounded whatever the edits' sizes); None: run them in full."""
        engine = self.engine
        if engine is None:
            return None
        timing: dict[str, float] = {}
        started = time.perf_counter()
        tensor = self.preprocessor(base)
        timing["preprocess"] = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        activations, cached = engine.prepare_base(tensor)
        # Which key says whether the base image's activations were computed or reused.
        timing["base_cached" if cached else "base"] = (time.perf_counter() - started) * 1e3
        if not activations.incremental:
            if not cached:  # once per base image, not once per call
                log.info("edits run in full", extra={"reason": activations.reason})
            return None
        geometry = self.preprocessor.geometry(base.shape[1], base.shape[0])
        rows = [np.empty((0, *activations.output.shape), np.float32)]
        timing["inference"] = 0.0
        for start in range(0, len(edits), chunk):
            began = time.perf_counter()
            patches = edit_patches(base, edits[start : start + chunk], geometry, self.preprocessor)
            timing["preprocess"] += (time.perf_counter() - began) * 1e3
            began = time.perf_counter()
            rows.append(engine.run(activations, patches))
            timing["inference"] += (time.perf_counter() - began) * 1e3
        return EditScores(activations.output, np.concatenate(rows), cached, timing)


def reference_saving(engine: IncrementalEngine, geometry: Geometry, channels: int) -> float:
    """Full inference's convolution multiply-adds over the engine's (the regions
    its batches compute) for the reference windows at this geometry. The values
    do not matter, only where the windows fall: the base is noise and stays out
    of the cache."""
    width, height = geometry.network_size
    rng = np.random.default_rng(0)
    tensor = rng.normal(0, 1, (1, channels, height, width)).astype(np.float32)
    patches = []
    for x, y, w, h in reference_windows(geometry.width):
        rect = network_rect(geometry, x, y, w, h)
        if rect is not None:
            y0, y1, x0, x1 = rect
            patches.append((y0, x0, np.zeros((channels, y1 - y0, x1 - x0), np.float32)))
    with engine.scratch():
        base = engine.prepare(tensor)
        if not base.incremental:
            raise NotIncremental(base.reason)
        whole, _, batched = engine.multiply_adds(base, patches)
    return whole / batched
