"""The Redis rate limiter, against the real Redis: shared, persistent, never drops."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from flowhq.redis_pool import shared_client
from workers.bot.rate_limiter import RateLimiter, rate_key


def run(coro):
    return asyncio.run(coro)


def limiter(tenant_id: int, window_ms: int) -> RateLimiter:
    return RateLimiter(shared_client(settings.REDIS_URL), tenant_id, window_ms=window_ms)


def test_n_sends_pass_then_the_next_waits_for_the_window(redis_client):
    async def scenario() -> list[int]:
        sender = limiter(901, 1000)
        return [await sender.try_acquire(3) for _ in range(4)]

    waits = run(scenario())
    assert waits[:3] == [0, 0, 0]
    assert 0 < waits[3] <= 1000


def test_the_budget_is_shared_by_every_sender_and_survives_a_restart(redis_client):
    async def scenario() -> tuple[int, int]:
        await limiter(902, 60_000).try_acquire(2)
        # the worker restarts...
        second, api_sender = limiter(902, 60_000), limiter(902, 60_000)
        return await second.try_acquire(2), await api_sender.try_acquire(2)

    assert run(scenario())[0] == 0
    assert run(scenario())[1] > 0 or redis_client.zcard(rate_key(902)) == 2


def test_acquire_waits_its_turn_instead_of_dropping(redis_client):
    async def scenario() -> tuple[list[int], float, int]:
        sender = limiter(903, 400)
        notified: list[int] = []

        async def on_wait(ms: int) -> None:
            notified.append(ms)

        began = time.monotonic()
        for _ in range(4):
            await sender.acquire(2, on_wait=on_wait)
        return notified, time.monotonic() - began, redis_client.zcard(rate_key(903))

    notified, elapsed, in_window = run(scenario())
    # Sends 3 and 4 wait for sends 1 and 2 to leave the window: the second wait may be a
    # millisecond or two, or none if the first one outlasted both.
    assert 1 <= len(notified) <= 2
    assert notified[0] > 300
    assert elapsed >= 0.35
    assert in_window == 2
