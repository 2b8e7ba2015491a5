"""Which inpainting engine lives where, and falling back when one is down.

The HTTP API's "backends" are engine names (telea, patchmatch, ...). Each
configured address runs an Inpainter service whose GetInfo lists its engines;
the registry keeps an engine -> address table from those answers, refreshed in
the background and whenever a call finds a service down. Engines seen once are
remembered, so a request for a backend whose service died falls back (and says
so) instead of being told the name does not exist.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from common.channels import check_health, open_channel
from common.errors import NotFound, ServiceCallFailed, Unavailable
from ic.v1 import inpainter_pb2, inpainter_pb2_grpc

log = logging.getLogger(__name__)
T = TypeVar("T")

# A call failing with one of these means "this service cannot do it now": try another.
FALLBACK_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
)


@dataclass
class BackendAddress:
    """One configured Inpainter address (a DNS name may hide several replicas)."""

    target: str
    channel: grpc.Channel
    stub: inpainter_pb2_grpc.InpainterStub
    info: inpainter_pb2.InpainterInfo | None = None
    up: bool = False
    error: str = "not contacted yet"
    checked_at: float = 0.0


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    available: bool
    unavailable_reason: str
    service: str
    address: str
    params: tuple = ()
    randomized: bool = False
    # What the engine reads round a hole (EngineInfo): a client may send only that.
    reach_px: int = 0
    reach_factor: float = 0.0
    reads_whole_image: bool = True

    def region_to_send(
        self, box: tuple[int, int, int, int], width: int, height: int
    ) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the part of a width x height image this engine needs
        to fill the hole whose bounding box is `box` (x0, y0, x1, y1)."""
        # A backend that says nothing of its reach (all fields zero: an engine
        # with no reach could not fill anything) gets the whole image.
        unknown = self.reach_px == 0 and self.reach_factor == 0
        if self.reads_whole_image or unknown:
            return 0, 0, width, height
        x0, y0, x1, y1 = box
        margin = self.reach_px + math.ceil(self.reach_factor * max(x1 - x0, y1 - y0))
        return (
            max(0, x0 - margin),
            max(0, y0 - margin),
            min(width, x1 + margin),
            min(height, y1 + margin),
        )


@dataclass
class InpaintOutcome:
    response: object
    engine: str
    fallback: bool
    attempts: list[str] = field(default_factory=list)


class BackendRegistry:
    def __init__(
        self,
        targets: list[str],
        default_backend: str,
        info_timeout_s: float,
        health_timeout_s: float,
        refresh_s: float,
    ) -> None:
        self.default_backend = default_backend
        self.info_timeout_s = info_timeout_s
        self.health_timeout_s = health_timeout_s
        self.refresh_s = refresh_s
        self.addresses = []
        for target in targets:
            channel = open_channel(target)
            stub = inpainter_pb2_grpc.InpainterStub(channel)
            self.addresses.append(BackendAddress(target, channel, stub))
        self._lock = threading.Lock()
        self._refreshed_once = False
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the table ---------------------------------------------------------

    def refresh(self) -> None:
        """Ask every address what it offers (GetInfo); remember what answered."""
        with self._lock:
            for address in self.addresses:
                try:
                    info = address.stub.GetInfo(
                        inpainter_pb2.GetInfoRequest(), timeout=self.info_timeout_s
                    )
                except grpc.RpcError as exc:
                    if address.up:
                        log.warning(
                            "inpainting backend down",
                            extra={"address": address.target, "code": exc.code().name},
                        )
                    address.up = False
                    address.error = f"{exc.code().name}: {exc.details()}"
                else:
                    if not address.up:
                        log.info(
                            "inpainting backend up",
                            extra={
                                "address": address.target,
                                "engines": [e.name for e in info.engines],
                            },
                        )
                    address.info, address.up, address.error = info, True, ""
                address.checked_at = time.monotonic()
            self._refreshed_once = True

    def ensure_started(self) -> None:
        """First use in this process: fill the table, start the background refresher."""
        if not self._refreshed_once:
            self.refresh()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._refresh_loop, name="backend-refresh", daemon=True
                    )
                    self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.refresh_s)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self.refresh()
            except Exception:  # never let the refresher die
                log.exception("backend refresh failed")

    def engine(self, name: str) -> Engine | None:
        return next((e for e in self.engines() if e.name == name), None)

    def engines(self) -> list[Engine]:
        """Every engine ever seen, in address order; `available` means usable now."""
        self.ensure_started()
        seen: dict[str, Engine] = {}
        for address in self.addresses:
            if address.info is None:
                continue
            for info in address.info.engines:
                engine = Engine(
                    name=info.name,
                    description=info.description,
                    available=address.up and info.available,
                    unavailable_reason=(
                        info.unavailable_reason
                        if not info.available
                        else ("" if address.up else f"service down: {address.error}")
                    ),
                    service=address.info.service,
                    address=address.target,
                    params=tuple(
                        {
                            "name": p.name,
                            "description": p.description,
                            "default": p.default_value,
                            "min": p.min_value,
                            "max": p.max_value,
                        }
                        for p in info.params
                    ),
                    randomized=info.randomized,
                    reach_px=info.reach_px,
                    reach_factor=info.reach_factor,
                    reads_whole_image=info.reads_whole_image,
                )
                # The same engine on two addresses: it is available if either is.
                if info.name not in seen or (engine.available and not seen[info.name].available):
                    seen[info.name] = engine
        return list(seen.values())

    def default_name(self) -> str:
        names = [e.name for e in self.engines()]
        return self.default_backend if self.default_backend in names or not names else names[0]

    def _offering(self, name: str) -> list[BackendAddress]:
        return [
            a
            for a in self.addresses
            if a.info is not None and any(e.name == name for e in a.info.engines)
        ]

    def _usable(self, address: BackendAddress, name: str) -> bool:
        return address.up and any(e.name == name and e.available for e in address.info.engines)

    def plan(self, requested: str | None) -> list[tuple[str, BackendAddress]]:
        """Where to try `requested` (or the default), then the fallbacks, in order."""
        self.ensure_started()
        name = requested or self.default_name()
        if not self._offering(name):
            if all(a.info is None for a in self.addresses):
                # Nothing has ever answered: the name may be fine, the services are not.
                silent = "; ".join(f"{a.target}: {a.error}" for a in self.addresses)
                raise Unavailable(
                    f"no inpainting backend has answered yet ({silent or 'none configured'})"
                )
            known = sorted({e.name for e in self.engines()})
            silent = [a.target for a in self.addresses if a.info is None]
            hint = f"; not answering yet: {', '.join(silent)}" if silent else ""
            raise NotFound(
                f"unknown backend {name!r}; known backends: {', '.join(known) or 'none'}{hint}"
            )
        first = [(name, a) for a in self._offering(name) if self._usable(a, name)]
        fallback_names = [self.default_name()] + [e.name for e in self.engines()]
        rest: list[tuple[str, BackendAddress]] = []
        for other in dict.fromkeys(fallback_names):
            if other == name:
                continue
            rest += [(other, a) for a in self._offering(other) if self._usable(a, other)]
        if not first and not rest:
            # The table may be stale (a service just came back): one honest try.
            first = [(name, a) for a in self._offering(name)]
        return first + rest

    def call(
        self, requested: str | None, attempt: Callable[[inpainter_pb2_grpc.InpainterStub, str], T]
    ) -> InpaintOutcome:
        """Run `attempt(stub, engine)` on the requested engine, falling back to
        others while services answer "cannot do it now"; 503 if none can."""
        plan = self.plan(requested)
        wanted = self.wanted(requested)
        failures: list[str] = []
        for engine, address in plan:
            try:
                result = attempt(address.stub, engine)
            except grpc.RpcError as exc:
                if exc.code() not in FALLBACK_CODES:
                    raise ServiceCallFailed(f"inpainting ({engine})", exc) from exc
                failures.append(f"{engine} at {address.target}: {exc.code().name}")
                self.report_failure(address, exc)
                continue
            return InpaintOutcome(result, engine, engine != wanted, failures)
        raise Unavailable(
            f"no inpainting backend is available for {wanted!r}: "
            + ("; ".join(failures) or "every backend service is down")
        )

    def report_failure(self, address: BackendAddress, exc: grpc.RpcError) -> None:
        """A call to `address` failed with a fallback code: if the service is
        unreachable, count it down until the table is re-read (soon)."""
        if exc.code() is grpc.StatusCode.UNAVAILABLE:
            address.up = False
            address.error = f"{exc.code().name}: {exc.details()}"
        self._wake.set()

    def wanted(self, requested: str | None) -> str:
        """The engine a request means: the one it names, or the default."""
        return requested or self.default_name()

    def health(self) -> list[tuple[str, bool, str]]:
        """(address, serving?, detail) of every address, by gRPC health."""
        return [
            (a.target, *check_health(a.channel, "ic.v1.Inpainter", self.health_timeout_s))
            for a in self.addresses
        ]

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        for address in self.addresses:
            address.channel.close()
