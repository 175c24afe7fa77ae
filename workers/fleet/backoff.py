"""Crash-restart delays: ×1.5 per consecutive crash, capped."""

from __future__ import annotations

FACTOR = 1.5


def restart_delay_ms(consecutive_failures: int, *, base_ms: int, max_ms: int) -> int:
    """Delay before respawning after the n-th crash in a row (0 before any)."""
    if consecutive_failures <= 0:
        return 0
    return int(min(max_ms, base_ms * FACTOR ** (consecutive_failures - 1)))


def failures_after_crash(previous: int, *, uptime_ms: float, stable_after_ms: int) -> int:
    """A child that stayed up long enough earns a clean slate: its crash counts as the first."""
    return 1 if uptime_ms >= stable_after_ms else previous + 1
