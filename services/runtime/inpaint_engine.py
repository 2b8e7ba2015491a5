"""The inpainting engine interface shared by every Inpainter service.

Each engine is one class behind `InpaintEngine` (IOPaint's shape): a name, a
description, its parameters with defaults and ranges, whether its output depends
on the seed, whether it can run here, and `inpaint(image, mask, params, seed)`.
A service lists its engines in one `EngineRegistry`; adding an engine means
writing one class and adding it to that table.

`run_engine` is the one way the servers call an engine. It owns the guarantees
of the contract, whatever the engine does: parameters are checked by name and
range, an empty mask returns the image unchanged, a mask covering everything is
refused (there is nothing to sample from), and pixels outside the mask come back
bit-identical.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from common.errors import EngineUnavailable, InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineParam:
    """One tunable number of an engine; the proto's EngineParam."""

    name: str
    description: str
    default: float
    min: float
    max: float
    # Whole numbers only (sizes, counts): 3.5 is refused rather than rounded.
    integer: bool = False


@dataclass
class StopSignal:
    """Tells a long-running engine to give up: the client went away or the deadline passed.

    Engines that can stop early poll `should_stop()` or hand `seconds_left()` and
    `event` to native code, and raise EngineStopped; the others run to the end.
    """

    event: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None  # time.monotonic() value

    def should_stop(self) -> bool:
        if self.event.is_set():
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    def seconds_left(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class Reach:
    """Which known pixels an engine reads to fill a hole: those within
    `pixels + factor * (the hole box's longer side)` of the hole's bounding box,
    or every pixel of the image (`whole_image`). A client with a large image
    may send only that part round the hole and get the same fill
    (EngineInfo.reach_px / reach_factor / reads_whole_image)."""

    pixels: int = 0
    factor: float = 0.0
    whole_image: bool = True


class EngineStopped(Exception):
    """An engine gave up because its StopSignal fired (client gone, deadline passed)."""


class InpaintEngine(ABC):
    """One way of filling the masked pixels of an RGB image."""

    name: str = ""
    description: str = ""
    params: tuple[EngineParam, ...] = ()
    # True when the output depends on the seed (the same seed gives the same output).
    randomized: bool = False

    def availability(self) -> tuple[bool, str]:
        """(True, "") when the engine can run here, else (False, why not)."""
        return True, ""

    def reach(self, params: Mapping[str, float]) -> Reach:
        """Which pixels the engine reads with these (resolved) parameters; by
        default every pixel of the image, the answer that is always true."""
        return Reach()

    @abstractmethod
    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        """image HxWx3 uint8 RGB, mask HxW bool (True = remove), params already
        validated and completed with defaults -> HxWx3 uint8 RGB.

        Only called with a mask that has both removed and kept pixels."""

    def resolve_params(self, given: Mapping[str, float]) -> dict[str, float]:
        """The caller's parameters checked by name and range, defaults filled in."""
        known = {param.name: param for param in self.params}
        for name in given:
            if name not in known:
                accepted = ", ".join(sorted(known)) or "none"
                raise InvalidInput(
                    f"engine {self.name!r} has no parameter {name!r} (accepted: {accepted})"
                )
        resolved = {param.name: float(param.default) for param in self.params}
        for name, value in given.items():
            param = known[name]
            value = float(value)
            if not math.isfinite(value) or not param.min <= value <= param.max:
                raise InvalidInput(
                    f"parameter {name!r} of engine {self.name!r} is {value:g}; "
                    f"it must be between {param.min:g} and {param.max:g}"
                )
            if param.integer and not value.is_integer():
                raise InvalidInput(
                    f"parameter {name!r} of engine {self.name!r} is {value:g}; "
                    "it must be a whole number"
                )
            resolved[name] = value
        return resolved


class EngineRegistry:
    """The engines one service offers, by name, and which one is the default.

    `disabled` names engines an operator switched off (IC_DISABLE_ENGINES): they
    are still listed, as unavailable, so clients learn why they cannot use them;
    names this service does not have are ignored with a warning.
    """

    def __init__(
        self,
        service: str,
        engines: Iterable[InpaintEngine],
        default: str,
        disabled: Iterable[str] = (),
    ) -> None:
        self.service = service
        self._engines: dict[str, InpaintEngine] = {}
        for engine in engines:
            if engine.name in self._engines:
                raise ValueError(f"two engines are named {engine.name!r}")
            self._engines[engine.name] = engine
        if default not in self._engines:
            raise SystemExit(
                f"{service}: the default engine {default!r} is not one of {self.names()}"
            )
        unknown = sorted(set(disabled) - set(self._engines))
        if unknown:
            # One IC_DISABLE_ENGINES may be shared by both services (one
            # environment for `make run`), so names of other services' engines
            # are expected here: ignored, but said, in case of a typo.
            log.warning(
                "IC_DISABLE_ENGINES names engines this service does not have",
                extra={"ignored": unknown, "engines": self.names()},
            )
        self.default = default
        self.disabled = frozenset(disabled) & set(self._engines)

    def names(self) -> list[str]:
        return list(self._engines)

    def engines(self) -> list[InpaintEngine]:
        return list(self._engines.values())

    def get(self, name: str) -> InpaintEngine:
        """The engine called `name` ("" = the default); InvalidInput if there is none."""
        engine = self._engines.get(name or self.default)
        if engine is None:
            raise InvalidInput(
                f"unknown engine {name!r}; this service offers {', '.join(self.names())}"
            )
        return engine

    def availability(self, engine: InpaintEngine) -> tuple[bool, str]:
        if engine.name in self.disabled:
            return False, "disabled by the operator (IC_DISABLE_ENGINES)"
        return engine.availability()

    def require_available(self, engine: InpaintEngine) -> None:
        available, reason = self.availability(engine)
        if not available:
            raise EngineUnavailable(f"engine {engine.name!r} cannot run here: {reason}")


def run_engine(
    engine: InpaintEngine,
    image: np.ndarray,
    mask: np.ndarray,
    params: Mapping[str, float],
    seed: int,
    stop: StopSignal | None = None,
    what: str = "mask",
) -> np.ndarray:
    """Inpaint with the contract's guarantees; `params` are resolved (see resolve_params).

    Raises InvalidInput for a mask that does not fit the image or removes every pixel.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInput(f"image must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise InvalidInput(
            f"{what} is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; they must have the same size"
        )
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        return image.copy()
    if mask.all():
        raise InvalidInput(f"{what} covers the whole image: nothing to sample from")
    result = engine.inpaint(image, mask, params, seed, stop)
    if result.shape != image.shape or result.dtype != np.uint8:
        raise RuntimeError(
            f"engine {engine.name!r} returned {result.shape} {result.dtype} "
            f"for an image of {image.shape}"
        )
    # Whatever the engine did elsewhere, only the removed pixels may change.
    # Pixels as 3-byte rows, picked by flat index: 4x faster than a boolean
    # mask over HxWx3 (0.1 ms at 227 px, on every brush stroke).
    output = image.copy()
    removed = np.flatnonzero(mask)
    output.reshape(-1, 3)[removed] = result.reshape(-1, 3)[removed]
    return output
