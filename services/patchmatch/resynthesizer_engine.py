"""GIMP's Resynthesizer ("heal selection") as an optional engine.

The library comes from the PyPI package `resynthesizer` (GPL-3.0), installed
separately from this project's code and loaded at run time; where it is missing
or its shared library cannot be loaded the engine reports itself unavailable
with the reason, and the rest of the service works without it.

Two facts about the library shape this wrapper:
- Every call reseeds libc's *global* random generator with a constant
  (srand(1198472) inside imageSynth) and then draws from it, so two calls at
  the same time interleave their draws and corrupt each other's results. Calls
  are serialised with a lock. The constant seed also means the output does not
  depend on our seed: the engine is deterministic, not randomized.
- imageSynth takes a cancel flag, but this build does not act on it (a raised
  flag did not shorten a 12 s call here), so a running call cannot be stopped.
  What can be stopped is waiting: a call queued behind the lock gives up when
  its client leaves or its deadline passes.
This wrapper calls imageSynth itself (the package's `resynthesize()` goes
through PIL images and turns seamless tiling on, which is wrong for a hole).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from functools import cached_property
from types import ModuleType

import numpy as np

from common.errors import EngineUnavailable
from services.runtime.inpaint_engine import EngineParam, EngineStopped, InpaintEngine, StopSignal

# The sampling orders of the library's matchContextType (0, "no context", makes
# no sense for filling a hole and is left out).
ORDERS = (
    "1 random",
    "2 concentric inwards",
    "3 horizontal inwards",
    "4 vertical inwards",
    "5 concentric outwards",
    "6 horizontal outwards",
    "7 vertical outwards",
)
T_RGB = 0  # the library's TImageFormat for packed RGB


class ResynthesizerEngine(InpaintEngine):
    name = "resynthesizer"
    description = (
        "GIMP's Resynthesizer 'heal selection' (Harrison 2001): fills the hole pixel by "
        "pixel with the best-matching neighbourhoods from the rest of the image. Good on "
        "texture. Optional library (GPL-3.0); calls run one at a time."
    )
    params = (
        EngineParam(
            "neighbours",
            "Pixels of context compared for each match (the library's patchSize).",
            default=30,
            min=1,
            max=100,
            integer=True,
        ),
        EngineParam(
            "probes",
            "Candidate matches tried per pixel (the library's maxProbeCount).",
            default=200,
            min=1,
            max=1000,
            integer=True,
        ),
        EngineParam(
            "outlier_sensitivity",
            "How strongly large differences count against a match.",
            default=0.117,
            min=0.01,
            max=1.0,
        ),
        EngineParam(
            "order",
            "Order in which the hole is filled: " + ", ".join(ORDERS) + ".",
            default=1,
            min=1,
            max=7,
            integer=True,
        ),
    )
    randomized = False

    # One lock for the process: the library's random state is libc's, shared by all.
    _lock = threading.Lock()
    # How often a call waiting for the lock checks whether its client is still there.
    _WAIT_POLL_S = 0.05

    @cached_property
    def _library(self) -> ModuleType | Exception:
        try:
            from resynthesizer import resynthesizer as library  # loads the shared library
        except Exception as exc:  # ImportError, OSError from ctypes, anything at import
            return exc
        return library

    def availability(self) -> tuple[bool, str]:
        library = self._library
        if isinstance(library, Exception):
            return False, (
                "the optional resynthesizer library cannot be loaded "
                f"({type(library).__name__}: {library}); install it with "
                "`pip install resynthesizer` (GPL-3.0)"
            )
        return True, ""

    def inpaint(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        params: Mapping[str, float],
        seed: int,
        stop: StopSignal | None = None,
    ) -> np.ndarray:
        library = self._library
        if isinstance(library, Exception):
            raise EngineUnavailable(self.availability()[1])
        height, width = image.shape[:2]
        # imageSynth writes the result into the image buffer it is given.
        pixels = np.ascontiguousarray(image, dtype=np.uint8).copy()
        selection = np.ascontiguousarray(mask, dtype=np.uint8) * np.uint8(255)
        image_buffer = _buffer(library, pixels, width, height, width * 3)
        mask_buffer = _buffer(library, selection, width, height, width)
        options = library.TImageSynthParameters()
        options.isMakeSeamlesslyTileableHorizontally = 0
        options.isMakeSeamlesslyTileableVertically = 0
        options.matchContextType = int(params["order"])
        options.mapWeight = 0.5  # unused without a map image
        options.sensitivityToOutliers = float(params["outlier_sensitivity"])
        options.patchSize = int(params["neighbours"])
        options.maxProbeCount = int(params["probes"])
        cancel_flag = ctypes.c_int(0)
        progress = library.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)(_ignore_progress)
        if not _acquire(self._lock, stop, self._WAIT_POLL_S):
            raise EngineStopped("resynthesizer: the call ended while waiting for its turn")
        try:
            status = library.imageSynth(
                ctypes.byref(image_buffer),
                ctypes.byref(mask_buffer),
                T_RGB,
                ctypes.byref(options),
                progress,
                None,
                ctypes.byref(cancel_flag),
            )
        finally:
            self._lock.release()
        if status != 0:
            raise RuntimeError(f"resynthesizer's imageSynth failed with status {status}")
        return pixels


def _acquire(lock: threading.Lock, stop: StopSignal | None, poll_s: float) -> bool:
    """Take the lock, unless `stop` fires first."""
    if stop is None:
        return lock.acquire()
    while not stop.should_stop():
        if lock.acquire(timeout=poll_s):
            return True
    return False


def _buffer(library: ModuleType, array: np.ndarray, width: int, height: int, row_bytes: int):
    buffer = library.ImageBuffer()
    buffer.data = array.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte))
    buffer.width, buffer.height, buffer.rowBytes = width, height, row_bytes
    return buffer


def _ignore_progress(percent: int, context: int | None) -> None:
    """The packaged library is built without progress reports; this is never called."""
