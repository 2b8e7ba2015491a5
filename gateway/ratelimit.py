"""A per-client token bucket on the compute endpoints (POST /api/...).

`IC_RATE_LIMIT_PER_MIN` requests per minute per client address, with bursts
of `IC_RATE_LIMIT_BURST` (default: the per-minute figure); 0 turns it off.
Buckets live in each gateway process: with N workers a client gets up to N
times the rate. That is the point of a simple limiter; a shared store is for
deployments that need an exact one.
"""

from __future__ import annotations

import math
import threading
import time

from flask import Flask, request

from gateway.errors import ApiError

MAX_TRACKED_CLIENTS = 10_000


class TokenBuckets:
    def __init__(self, per_minute: int, burst: int, clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst or per_minute)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token of `client`: 0 if allowed, else seconds until one is back."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > MAX_TRACKED_CLIENTS:
                self._forget_full(now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # Clients whose bucket has refilled are indistinguishable from new ones.
        for client, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[client]


def install(app: Flask, per_minute: int, burst: int) -> None:
    if per_minute <= 0:
        return
    buckets = TokenBuckets(per_minute, burst)

    @app.before_request
    def _rate_limit() -> None:
        if request.method != "POST" or not request.path.startswith("/api/"):
            return
        wait_s = buckets.take(request.remote_addr or "-")
        if wait_s > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests: at most {per_minute} per minute per client; "
                f"retry in {math.ceil(wait_s)} s",
                headers={"Retry-After": str(math.ceil(wait_s))},
            )
