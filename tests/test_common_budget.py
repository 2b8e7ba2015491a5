"""common/budget: concurrency counted in pixels."""

from __future__ import annotations

import threading
import time

import pytest

from common.budget import PixelBudget


def test_small_requests_share_and_a_big_one_waits_its_turn():
    budget = PixelBudget(100)
    assert budget.acquire(30, timeout=0) == 30
    assert budget.acquire(60, timeout=0) == 60
    assert budget.acquire(20, timeout=0.05) is None  # 110 > 100: not now
    got = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(20, timeout=5)))
    waiter.start()
    time.sleep(0.05)
    assert got == []  # still waiting
    budget.release(30)
    waiter.join(5)
    assert got == [20] and budget.in_use == 80


def test_a_request_larger_than_the_budget_runs_alone():
    budget = PixelBudget(100)
    assert budget.acquire(5000, timeout=0) == 100
    assert budget.acquire(1, timeout=0.01) is None
    budget.release(100)
    assert budget.acquire(1, timeout=0) == 1


def test_an_empty_budget_is_refused():
    with pytest.raises(ValueError, match="at least 1 pixel"):
        PixelBudget(0)
