"""Handing memory back to the system after large requests (glibc's malloc).

A 12 MP photo is a 36 MB array, and every service that touches one allocates
a few buffers of that size. glibc's defaults keep much of it after the request:
each thread allocates from its own arena (up to 8 per core), freed chunks in a
non-main arena are rarely returned, and the threshold above which a buffer is
mmap'd (and so unmapped on free) rises with every large buffer freed, so the
next ones come from the arenas too. Measured here: services that idle at
75-150 MB kept 450 MB after eight concurrent 12 MP edits.

`tune_allocator()` fixes that at start-up: large buffers are always mmap'd
(returned on free), fewer arenas, and a lower trim threshold. A background
`Trimmer` calls malloc_trim(0) every few seconds, which returns the free
pages inside the arenas as well. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

# Buffers of this size or more are mmap'd: images, tensors and gRPC messages,
# not the small objects that Python allocates in their millions.
MMAP_THRESHOLD_BYTES = 1 << 20
TRIM_THRESHOLD_BYTES = 8 << 20
ARENAS = 2
TRIM_INTERVAL_S = 2.0


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - present in glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def tune_allocator() -> bool:
    """Set glibc's malloc for a service that handles large images; True if it took."""
    if _LIBC is None:
        return False
    ok = all(
        _LIBC.mallopt(parameter, value) == 1
        for parameter, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
            (M_ARENA_MAX, ARENAS),
        )
    )
    if not ok:
        log.warning("mallopt refused a setting; memory may be kept after large requests")
    return ok


def release_free_memory() -> bool:
    """Return free heap pages to the system now (malloc_trim); True if any were."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


class Trimmer:
    """Calls malloc_trim(0) every `interval_s` seconds in a daemon thread."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Trimmer:
        if _LIBC is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            release_free_memory()

    def stop(self) -> None:
        self._stop.set()


def keep_memory_in_check() -> Trimmer:
    """tune_allocator() and a running Trimmer: one call at a process's start."""
    tune_allocator()
    return Trimmer().start()
