"""How many pixels a process works on at once: concurrency that counts big images.

A thread pool bounds how many requests run at once, but a 12 MP photo costs
a hundred times the memory of the page's 227 px working copy. A `PixelBudget`
is a semaphore weighed in pixels: each request reserves the pixels of the
images it decodes, waits while the budget is spent, and gives them back when
it is done. Small requests never wait for each other in practice; big ones
queue instead of multiplying the process's memory. A request larger than the
whole budget still runs, alone.
"""

from __future__ import annotations

import threading


class PixelBudget:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a pixel budget needs at least 1 pixel, got {capacity}")
        self.capacity = capacity
        self.in_use = 0
        self._changed = threading.Condition()

    def acquire(self, pixels: int, timeout: float) -> int | None:
        """Reserve `pixels` (at most the whole budget); the weight reserved, or
        None if it could not be had within `timeout` seconds."""
        weight = max(1, min(pixels, self.capacity))
        with self._changed:
            if not self._changed.wait_for(lambda: self.in_use + weight <= self.capacity, timeout):
                return None
            self.in_use += weight
            return weight

    def release(self, weight: int) -> None:
        with self._changed:
            self.in_use -= weight
            self._changed.notify_all()
