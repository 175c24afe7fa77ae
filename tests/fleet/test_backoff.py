from __future__ import annotations

import pytest

from workers.fleet.backoff import crash_restart_delay_ms, failures_after_crash, restart_delay_ms


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0), (1, 1000), (2, 1500), (3, 2250), (4, 3375), (10, 30000), (50, 30000)],
)
def test_restart_delay_grows_by_half_each_crash_up_to_the_cap(failures, expected):
    assert restart_delay_ms(failures, base_ms=1000, max_ms=30000) == expected


def test_a_child_that_stayed_up_long_enough_starts_counting_again():
    assert failures_after_crash(4, uptime_ms=61_000, stable_after_ms=60_000) == 1
    assert failures_after_crash(4, uptime_ms=59_000, stable_after_ms=60_000) == 5


def test_the_first_crash_after_a_stable_run_restarts_at_once():
    assert crash_restart_delay_ms(1, uptime_ms=61_000, stable_after_ms=60_000, base_ms=1000, max_ms=30000) == 0


def test_a_crash_loop_still_backs_off_as_before():
    for failures, expected in [(1, 1000), (2, 1500), (3, 2250), (10, 30000)]:
        assert crash_restart_delay_ms(failures, uptime_ms=59_000, stable_after_ms=60_000,
                                      base_ms=1000, max_ms=30000) == expected


def test_a_crash_of_unknown_uptime_backs_off():
    assert crash_restart_delay_ms(1, uptime_ms=None, stable_after_ms=60_000, base_ms=1000, max_ms=30000) == 1000
