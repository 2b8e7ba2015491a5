"""tools/run_local's RestartPolicy: when a dead service is started again, and
when `make run` stops trying (the real restarts: test_tools_run_local.py)."""

from __future__ import annotations

import pytest

from tools.run_local import RestartPolicy, parse_args


def delays(policy: RestartPolicy, uptimes: list[float]) -> list[float | None]:
    return [policy.after_exit(uptime) for uptime in uptimes]


def test_the_delay_doubles_up_to_30_s_while_the_service_keeps_dying():
    # Runs of 20 s: not failed starts (>= 10 s), not stable (< 60 s).
    assert delays(RestartPolicy(), [20.0] * 8) == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_minute_of_uptime_resets_the_delay():
    policy = RestartPolicy()
    assert delays(policy, [20.0, 20.0, 20.0]) == [1, 2, 4]
    assert delays(policy, [3600.0, 20.0]) == [1, 2]


def test_five_failed_starts_in_a_row_give_up():
    policy = RestartPolicy()
    assert delays(policy, [0.5, 0.5, 0.5, 0.5]) == [1, 2, 4, 8]
    assert policy.after_exit(0.5) is None


def test_a_longer_run_breaks_the_row_of_failed_starts():
    policy = RestartPolicy()
    assert delays(policy, [0.5, 0.5, 0.5, 0.5, 15.0, 0.5, 0.5, 0.5, 0.5]) == [
        1,
        2,
        4,
        8,
        16,
        30,
        30,
        30,
        30,
    ]
    assert policy.after_exit(0.5) is None


def test_the_first_delay_is_an_option_and_the_cap_never_shortens_it():
    assert delays(RestartPolicy(first_delay_s=0.1), [0.5] * 4) == [0.1, 0.2, 0.4, 0.8]
    assert delays(RestartPolicy(first_delay_s=600), [20.0, 20.0]) == [600, 600]


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_restart_delay_that_is_not_positive_is_refused(value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--restart-delay", value])
    assert exc.value.code == 2
    assert "--restart-delay must be a positive number of seconds" in capsys.readouterr().err
