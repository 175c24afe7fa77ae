"""Reconnecting to WhatsApp: exponential backoff with jitter, bounded attempts.

Reset whenever the bot is ready again. Logged-out sessions are not retried
(the phone unlinked the device; only a new scan helps).
"""

from __future__ import annotations

import random
from collections.abc import Callable


def reconnect_delay_ms(attempt: int, *, base_ms: int, max_ms: int, rand: Callable[[], float] = random.random) -> int:
    """Delay before attempt `attempt` (1-based): base·2^(n-1), capped, with "equal jitter".

    Half of the delay is fixed, half random, so attempts from many tenants
    that dropped together spread out instead of stampeding back at once.
    """
    if attempt <= 0:
        return 0
    ceiling = min(max_ms, base_ms * 2 ** (attempt - 1))
    return int(ceiling / 2 + rand() * ceiling / 2)


class ReconnectBudget:
    def __init__(self, *, max_attempts: int, base_ms: int, max_ms: int) -> None:
        self.max_attempts = max_attempts
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.attempts = 0

    def next_delay_ms(self) -> int | None:
        """The wait before the next attempt, or None when the budget is spent."""
        if self.attempts >= self.max_attempts:
            return None
        self.attempts += 1
        return reconnect_delay_ms(self.attempts, base_ms=self.base_ms, max_ms=self.max_ms)

    def reset(self) -> None:
        self.attempts = 0
