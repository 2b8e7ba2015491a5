"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_calls(fn: Callable[[], object], iterations: int, warmup: int = 10) -> list[float]:
    """Milliseconds of each of `iterations` calls of fn(), after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples
