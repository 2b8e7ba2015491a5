"""Fixtures of the browser tests: Debian's Chromium under Playwright, and the
page of the session's gateway. Module-scoped: each test module gets a fresh
browser, so one module's state (storage, a crashed tab) never reaches another.
A module with a gateway of its own (test_browser_models.py) opens that
gateway's URL instead of `page_url`.

tests/conftest.py imports the fixtures from here.
"""

from __future__ import annotations

import pytest

from tests.support.browser_page import launch_chromium


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


@pytest.fixture(scope="module")
def page_url(gateway_service):
    return gateway_service.url + "/"
