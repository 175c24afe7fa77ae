"""The tenant's outgoing rate limit, shared by every sender and kept in Redis.

A sliding-window log: a sorted set of send times per tenant. One Lua script
trims the window, and either records the send or says how long to wait, in
one atomic step on Redis's own clock — so auto-replies and the send API share
one budget, a restarted worker does not get a fresh one, and two workers (or
clocks) cannot disagree. Over the limit a send waits its turn; nothing is
dropped. The script runs on the worker's one shared Redis connection
(flowhq/redis_pool.py), from a thread so the bot's event loop does not wait on it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

WINDOW_MS = 60_000

ACQUIRE = """
local key, limit, window, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


def rate_key(tenant_id: int) -> str:
    return f"flowhq:ratelimit:{tenant_id}"


class RateLimiter:
    def __init__(self, client: redis.Redis, tenant_id: int, *, window_ms: int = WINDOW_MS) -> None:
        self._acquire = client.register_script(ACQUIRE)
        self.key = rate_key(tenant_id)
        self.window_ms = window_ms

    async def try_acquire(self, limit: int) -> int:
        """0 if a send may go now (and it is counted), else the milliseconds to wait."""
        wait_ms = await asyncio.to_thread(self._acquire, keys=[self.key], args=[limit, self.window_ms, uuid.uuid4().hex])
        return int(wait_ms)

    async def acquire(self, limit: int, on_wait: Callable[[int], Awaitable[None]] | None = None) -> int:
        """Wait until a send is allowed; returns the milliseconds waited.

        While Redis is unreachable the send waits too (the budget cannot be
        checked, and sending unchecked could get the number banned).
        """
        waited = 0
        notified = False
        outage = 0
        while True:
            try:
                wait_ms = await self.try_acquire(limit)
                outage = 0
            except (RedisConnectionError, RedisTimeoutError) as exc:
                outage += 1
                if outage == 1:
                    log.warning("rate limiter unreachable; sends wait for Redis", extra={"error": str(exc)})
                wait_ms = min(10_000, 500 * outage)
            if wait_ms == 0:
                return waited
            if on_wait is not None and not notified:
                notified = True
                await on_wait(wait_ms)
            await asyncio.sleep(wait_ms / 1000)
            waited += wait_ms
