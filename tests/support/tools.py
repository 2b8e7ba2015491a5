"""Tests that need a tool outside Python (Chromium, Docker) skip with a message
saying what to install, except in CI (CI=true), where they fail instead: CI
must run everything."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str, install_hint: str) -> None:
    if condition:
        return
    message = f"{what} is not available: {install_hint}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: this test must run in CI)")
    pytest.skip(message)


def require_executable(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    require(path is not None, name, install_hint)
    return path
