"""Crash-restart delays: none for the first crash after a stable run, then ×1.5 per
consecutive crash, capped.

A worker that was up for WORKER_STABLE_AFTER_MS and then died (kill -9, out of memory,
a Chromium gone mad) is not in a crash loop: waiting only keeps its tenant offline, so
it is respawned at once, as PM2 does. The back-off is for crash loops: a worker that
dies before it was stable waits base × 1.5^(n-1), and gives up at
WORKER_MAX_CONSECUTIVE_CRASHES (the agent's rule).
"""

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


def crash_restart_delay_ms(consecutive_failures: int, *, uptime_ms: float | None, stable_after_ms: int,
                           base_ms: int, max_ms: int) -> int:
    """Delay before respawning a worker that crashed after `uptime_ms` (None: unknown, as
    for a process found gone after an agent restart): 0 after a stable run, else the back-off."""
    if uptime_ms is not None and uptime_ms >= stable_after_ms:
        return 0
    return restart_delay_ms(consecutive_failures, base_ms=base_ms, max_ms=max_ms)
