"""ctypes binding of the PatchMatch C engine (services/patchmatch/build/libpatchmatch.so).

`patchmatch_inpaint(image, mask, ...)` fills the masked pixels of an RGB image.
The library is loaded with `ctypes.CDLL`, which releases the GIL for the whole
C call, so concurrent requests run in parallel on several cores; the engine
keeps all its state per call, so that is safe.

PARAMS lists the tunable parameters (name, description, default, range) for
GetInfo; `validate_params` checks a request's `params` map against it.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import EngineUnavailable, InvalidInput, TooLarge

LIBRARY_PATH = Path(__file__).resolve().parent / "build" / "libpatchmatch.so"
ABI_VERSION = 1  # PM_ABI_VERSION in src/patchmatch.h
MAX_SEED = 2**64 - 1
# How often a watcher thread turns a threading.Event into the C cancel flag.
CANCEL_POLL_S = 0.02


class Cancelled(Exception):
    """The caller's cancel event was set while the engine ran."""


class DeadlineExceeded(TimeoutError):
    """The fill did not finish within timeout_s."""


@dataclass(frozen=True)
class EngineParam:
    """One tunable parameter, as GetInfo reports it (proto EngineParam)."""

    name: str
    description: str
    default: float
    minimum: float
    maximum: float
    integer: bool = True
    odd: bool = False

    def check(self, value: float) -> float | int:
        """The value as the engine takes it, or InvalidInput naming the problem."""
        kind = "an odd integer" if self.odd else ("an integer" if self.integer else "a number")
        allowed = f"{kind} from {self.minimum:g} to {self.maximum:g}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{self.name} must be {allowed}, got {value!r}") from None
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise InvalidInput(f"{self.name} must be {allowed}, got {value!r}")
        if self.integer and not number.is_integer():
            raise InvalidInput(f"{self.name} must be {allowed}, got {value!r}")
        if self.integer:
            if self.odd and int(number) % 2 == 0:
                raise InvalidInput(f"{self.name} must be {allowed}, got {value!r}")
            return int(number)
        return number


PARAMS: tuple[EngineParam, ...] = (
    EngineParam(
        "patch_size",
        "Side of the square patches, in pixels (odd). Larger patches keep bigger "
        "structures together; smaller ones follow fine texture.",
        9,
        3,
        21,
        odd=True,
    ),
    EngineParam(
        "em_iterations",
        "Search-and-vote rounds per pyramid level (the coarsest level gets twice as "
        "many; a level stops early once the fill settles). More rounds: slower, "
        "more settled fills.",
        3,
        1,
        20,
    ),
    EngineParam(
        "pm_iterations",
        "PatchMatch sweeps (propagation + random search) per round.",
        2,
        1,
        10,
    ),
    EngineParam(
        "context",
        "Where source patches come from: the hole's bounding box grown by this many "
        "times its larger side (the whole image if nothing usable is there).",
        1.0,
        0.0,
        10.0,
        integer=False,
    ),
)
PARAMS_BY_NAME = {p.name: p for p in PARAMS}
DEFAULTS = {p.name: p.default for p in PARAMS}

# pm_status codes of src/patchmatch.h
_OK = 0
_ERR_NULL_ARGUMENT = -1
_ERR_EMPTY_IMAGE = -2
_ERR_TOO_LARGE = -3
_ERR_MASK_SIZE = -4
_ERR_NOTHING_TO_SAMPLE = -5
_ERR_BAD_OPTION = -6
_ERR_NO_MEMORY = -7
_ERR_CANCELLED = -8
_ERR_TIMEOUT = -9


class _Options(ctypes.Structure):
    """pm_options of src/patchmatch.h (same field order and types)."""

    _fields_ = (
        ("patch_size", ctypes.c_int32),
        ("em_iterations", ctypes.c_int32),
        ("pm_iterations", ctypes.c_int32),
        ("context", ctypes.c_double),
        ("seed", ctypes.c_uint64),
        ("deadline_ms", ctypes.c_int64),
        ("cancel", ctypes.POINTER(ctypes.c_int32)),
    )


_library: ctypes.CDLL | None = None
_library_lock = threading.Lock()


def _load() -> ctypes.CDLL:
    global _library
    with _library_lock:
        if _library is not None:
            return _library
        if not LIBRARY_PATH.exists():
            raise EngineUnavailable(
                f"the PatchMatch library is not built ({LIBRARY_PATH} is missing): "
                "run `make native`"
            )
        try:
            lib = ctypes.CDLL(str(LIBRARY_PATH))
        except OSError as exc:
            raise EngineUnavailable(
                f"the PatchMatch library {LIBRARY_PATH} cannot be loaded ({exc}): run `make native`"
            ) from exc
        lib.pm_abi_version.restype = ctypes.c_int
        lib.pm_abi_version.argtypes = ()
        if lib.pm_abi_version() != ABI_VERSION:
            raise EngineUnavailable(
                f"{LIBRARY_PATH} was built from other sources (ABI {lib.pm_abi_version()}, "
                f"expected {ABI_VERSION}): run `make native`"
            )
        u8p = ctypes.POINTER(ctypes.c_uint8)
        lib.pm_inpaint.restype = ctypes.c_int
        lib.pm_inpaint.argtypes = (
            u8p,
            ctypes.c_int32,
            ctypes.c_int32,
            u8p,
            ctypes.c_int32,
            ctypes.c_int32,
            u8p,
            ctypes.POINTER(_Options),
        )
        lib.pm_status_message.restype = ctypes.c_char_p
        lib.pm_status_message.argtypes = (ctypes.c_int,)
        _library = lib
        return lib


def library_status() -> tuple[bool, str]:
    """(True, "") if the engine can run here, else (False, the reason)."""
    try:
        _load()
    except EngineUnavailable as exc:
        return False, str(exc)
    return True, ""


def validate_params(params: Mapping[str, float]) -> dict[str, float | int]:
    """A request's params map -> the full set of engine parameters.

    Unknown names and out-of-range values raise InvalidInput naming them.
    """
    unknown = sorted(set(params) - set(PARAMS_BY_NAME))
    if unknown:
        raise InvalidInput(
            f"unknown parameter(s) {', '.join(unknown)}; "
            f"patchmatch takes {', '.join(PARAMS_BY_NAME)}"
        )
    checked = {p.name: p.check(params.get(p.name, p.default)) for p in PARAMS}
    return checked


def _as_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InvalidInput(f"image must be an HxWx3 RGB array, got shape {shape}")
    if image.dtype != np.uint8:
        raise InvalidInput(f"image must be uint8 RGB, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidInput(f"image has zero size ({image.shape[1]}x{image.shape[0]})")
    return np.ascontiguousarray(image)


def _as_mask(mask: np.ndarray) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", None)
        raise InvalidInput(f"mask must be an HxW array, got shape {shape}")
    return np.ascontiguousarray(mask != 0, dtype=np.uint8)


def _raise_for(status: int, lib: ctypes.CDLL, image: np.ndarray, mask: np.ndarray) -> None:
    height, width = image.shape[:2]
    message = lib.pm_status_message(status).decode()
    if status == _ERR_EMPTY_IMAGE:
        raise InvalidInput(f"image has zero size ({width}x{height})")
    if status == _ERR_TOO_LARGE:
        raise TooLarge(f"image is {width}x{height}: {message}")
    if status == _ERR_MASK_SIZE:
        raise InvalidInput(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height}"
        )
    if status == _ERR_NOTHING_TO_SAMPLE:
        raise InvalidInput(message)
    if status == _ERR_BAD_OPTION:
        raise InvalidInput(message)
    if status == _ERR_CANCELLED:
        raise Cancelled("the fill was cancelled")
    if status == _ERR_TIMEOUT:
        raise DeadlineExceeded(message)
    if status == _ERR_NO_MEMORY:
        raise MemoryError("the PatchMatch engine ran out of memory")
    raise RuntimeError(f"PatchMatch engine failed: {message} (status {status})")


def _watch(cancel: threading.Event, flag: ctypes.c_int32, done: threading.Event) -> None:
    while not done.is_set():
        if cancel.wait(CANCEL_POLL_S):
            flag.value = 1
            return


def patchmatch_inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    seed: int = 0,
    patch_size: int = 9,
    em_iterations: int = 3,
    pm_iterations: int = 2,
    context: float = 1.0,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Fill the pixels of `image` (HxWx3 uint8 RGB) where `mask` (HxW, non-zero
    or True = remove) is set; returns a new array, identical outside the mask.

    The same inputs and seed give the same output. Raises InvalidInput for bad
    shapes, parameters or a mask covering everything, TooLarge for images over
    the engine's limit, DeadlineExceeded when timeout_s passes, Cancelled when
    `cancel` is set, EngineUnavailable when the library is not built.
    """
    lib = _load()
    image = _as_image(image)
    mask_u8 = _as_mask(mask)
    options = _Options(
        patch_size=PARAMS_BY_NAME["patch_size"].check(patch_size),
        em_iterations=PARAMS_BY_NAME["em_iterations"].check(em_iterations),
        pm_iterations=PARAMS_BY_NAME["pm_iterations"].check(pm_iterations),
        context=PARAMS_BY_NAME["context"].check(context),
    )
    if (
        isinstance(seed, bool)
        or not isinstance(seed, int | np.integer)
        or not (0 <= seed <= MAX_SEED)
    ):
        raise InvalidInput(f"seed must be an integer from 0 to 2^64-1, got {seed!r}")
    options.seed = int(seed)
    if timeout_s is not None:
        if not timeout_s > 0:
            raise DeadlineExceeded(f"no time left (timeout {timeout_s} s)")
        options.deadline_ms = max(1, math.ceil(timeout_s * 1000))
    if cancel is not None and cancel.is_set():
        raise Cancelled("the fill was cancelled before it started")

    flag = ctypes.c_int32(0)
    options.cancel = ctypes.pointer(flag)
    out = np.empty_like(image)
    u8p = ctypes.POINTER(ctypes.c_uint8)
    height, width = image.shape[:2]
    done = threading.Event()
    watcher = None
    if cancel is not None:
        watcher = threading.Thread(
            target=_watch, args=(cancel, flag, done), name="patchmatch-cancel", daemon=True
        )
        watcher.start()
    try:
        status = lib.pm_inpaint(
            image.ctypes.data_as(u8p),
            width,
            height,
            mask_u8.ctypes.data_as(u8p),
            mask_u8.shape[1],
            mask_u8.shape[0],
            out.ctypes.data_as(u8p),
            ctypes.byref(options),
        )
    finally:
        done.set()
        if watcher is not None:
            watcher.join()
    if status != _OK:
        _raise_for(status, lib, image, mask_u8)
    return out
