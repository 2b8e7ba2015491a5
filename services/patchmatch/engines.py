"""The engines of the patchmatch service: the project's own PatchMatch C engine
(the default) and, where the optional library is installed, GIMP's Resynthesizer.

Adding an engine: write its InpaintEngine class (here or in its own module) and
list it in ENGINES.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from services.patchmatch import native
from services.patchmatch.resynthesizer_engine import ResynthesizerEngine
from services.runtime.inpaint_engine import (
    EngineParam,
    EngineRegistry,
    EngineStopped,
    InpaintEngine,
    Reach,
    StopSignal,
)


class PatchMatchEngine(InpaintEngine):
    name = "patchmatch"
    description = (
        "PatchMatch (Barnes et al. 2009) inside multi-scale EM completion (Wexler et al. "
        "2007), in C: fills the hole with patches copied from the rest of the image, so "
        "texture and edges continue. Randomized: the same seed gives the same output."
    )
    params = tuple(
        EngineParam(p.name, p.description, p.default, p.minimum, p.maximum, p.integer)
        for p in native.PARAMS
    )
    randomized = True

    def availability(self) -> tuple[bool, str]:
        return native.library_status()

    def resolve_params(self, given: Mapping[str, float]) -> dict[str, float]:
        resolved = super().resolve_params(given)
        # The binding's own checks add what the generic ones cannot say (odd sizes).
        for name, value in resolved.items():
            native.PARAMS_BY_NAME[name].check(value)
        return resolved

    def reach(self, params: Mapping[str, float]) -> Reach:
        # The engine's working region: the hole's box grown by `context` x its
        # longer side (and the patches reach half a patch beyond). Only when that
        # region holds too few whole source patches does it take the whole image.
        return Reach(
            pixels=int(params["patch_size"]), factor=float(params["context"]), whole_image=False
        )

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        try:
            return native.patchmatch_inpaint(
                image,
                mask,
                seed=seed,
                patch_size=int(params["patch_size"]),
                em_iterations=int(params["em_iterations"]),
                pm_iterations=int(params["pm_iterations"]),
                context=float(params["context"]),
                timeout_s=stop.seconds_left() if stop else None,
                cancel=stop.event if stop else None,
            )
        except (native.Cancelled, native.DeadlineExceeded) as exc:
            raise EngineStopped(f"patchmatch: {exc}") from exc


# The table of this service's engines: add a class and list it here.
ENGINES: tuple[type[InpaintEngine], ...] = (PatchMatchEngine, ResynthesizerEngine)
DEFAULT_ENGINE = "patchmatch"


def build_registry(default: str = DEFAULT_ENGINE, disabled: tuple[str, ...] = ()) -> EngineRegistry:
    return EngineRegistry("patchmatch", (cls() for cls in ENGINES), default, disabled)
