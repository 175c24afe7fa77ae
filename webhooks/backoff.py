"""When to try a failed delivery again: exponential (×2 from WEBHOOK_RETRY_BASE_MS, capped at
WEBHOOK_RETRY_MAX_MS) with ±20 % jitter, so receivers that failed together are not retried together."""

from __future__ import annotations

import random

from django.conf import settings


def retry_delay_ms(failed_attempts: int, *, rng: random.Random | None = None) -> int:
    """The wait after the `failed_attempts`-th failed attempt (1 for the first)."""
    exponent = max(0, failed_attempts - 1)
    delay = min(settings.WEBHOOK_RETRY_MAX_MS, settings.WEBHOOK_RETRY_BASE_MS * 2 ** min(exponent, 40))
    return int(delay * (rng or random).uniform(0.8, 1.2))
