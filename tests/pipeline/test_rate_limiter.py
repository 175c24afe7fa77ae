"""The Redis rate limiter, against the real Redis: shared, persistent, never drops."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from workers.bot.rate_limiter import RateLimiter, rate_key


def run(coro):
    return asyncio.run(coro)


def test_n_sends_pass_then_the_next_waits_for_the_window(redis_client):
    async def scenario() -> list[int]:
        limiter = RateLimiter(settings.REDIS_URL, 901, window_ms=1000)
        try:
            return [await limiter.try_acquire(3) for _ in range(4)]
        finally:
            await limiter.close()

    waits = run(scenario())
    assert waits[:3] == [0, 0, 0]
    assert 0 < waits[3] <= 1000


def test_the_budget_is_shared_by_every_sender_and_survives_a_restart(redis_client):
    async def scenario() -> tuple[int, int]:
        first = RateLimiter(settings.REDIS_URL, 902, window_ms=60_000)
        await first.try_acquire(2)
        await first.close()  # the worker restarts...
        second = RateLimiter(settings.REDIS_URL, 902, window_ms=60_000)
        api_sender = RateLimiter(settings.REDIS_URL, 902, window_ms=60_000)
        try:
            return await second.try_acquire(2), await api_sender.try_acquire(2)
        finally:
            await second.close()
            await api_sender.close()

    assert run(scenario())[0] == 0
    assert run(scenario())[1] > 0 or redis_client.zcard(rate_key(902)) == 2


def test_acquire_waits_its_turn_instead_of_dropping(redis_client):
    async def scenario() -> tuple[list[int], float, int]:
        limiter = RateLimiter(settings.REDIS_URL, 903, window_ms=400)
        notified: list[int] = []

        async def on_wait(ms: int) -> None:
            notified.append(ms)

        try:
            began = time.monotonic()
            for _ in range(4):
                await limiter.acquire(2, on_wait=on_wait)
            return notified, time.monotonic() - began, redis_client.zcard(rate_key(903))
        finally:
            await limiter.close()

    notified, elapsed, in_window = run(scenario())
    assert len(notified) == 1
    assert elapsed >= 0.35
    assert in_window == 2
