"""A least-recently-used cache of base-image activations, bounded by bytes.

An explanation sends its windows in several ClassifyEdits calls with the same
base image; keyed by a hash of the network input, every call after the first
reuses the activations instead of running the base image again. Calls that
arrive together with a base not yet cached wait for the one computing it
(`get_or_make`) rather than computing it again side by side.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import numpy as np


class Sized(Protocol):
    nbytes: int


Entry = TypeVar("Entry", bound=Sized)


def content_key(tensor: np.ndarray) -> str:
    """A hash of a tensor's shape, type and values."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((tensor.shape, tensor.dtype.str)).encode())
    digest.update(np.ascontiguousarray(tensor).data)
    return digest.hexdigest()


class ActivationCache(Generic[Entry]):
    """Entries (anything with `nbytes`) by key; the least recently used go first
    once their bytes together exceed `max_bytes`. Safe to share between threads
    (and between engines, whose keys say whose entry it is)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # Keys being computed by get_or_make, and the event their waiters wait on.
        self._making: dict[str, threading.Event] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._take(key)
            if entry is None:
                self.misses += 1
            return entry

    def _take(self, key: str) -> Entry | None:
        """The entry, marked as just used and counted as a hit (lock held)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return entry

    def get_or_make(self, key: str, make: Callable[[], Entry]) -> tuple[Entry, bool]:
        """The entry for `key`, made (and kept) if missing; True when this call
        made it. While one call makes it, the others for that key wait and take
        the result (or make it themselves if that call failed or its entry was
        too large to keep)."""
        while True:
            with self._lock:
                entry = self._take(key)
                if entry is not None:
                    return entry, False
                making = self._making.get(key)
                if making is None:
                    making = self._making[key] = threading.Event()
                    self.misses += 1
                    break
            making.wait()
        try:
            entry = make()
            self.put(key, entry)
            return entry, True
        finally:
            with self._lock:
                del self._making[key]
            making.set()

    def put(self, key: str, entry: Entry) -> None:
        """Keep `entry` unless it alone is larger than the whole cache."""
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
