"""Configuration from environment variables, with defaults that work locally."""

from __future__ import annotations

import os
import socket


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not a number") from exc


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def replica_name() -> str:
    """Who is answering: the container's host name, or host:pid locally."""
    return os.environ.get("IC_REPLICA_NAME") or f"{socket.gethostname()}:{os.getpid()}"
