"""Counter increments kept in memory and added to Redis hashes by a background thread.

Counting must never fail or slow what it counts (a reply, a request): `add()` only
updates a dict under a lock. A daemon thread sends what accumulated, every
`METRICS_FLUSH_INTERVAL_MS`, as one pipelined batch of HINCRBY on the process's
shared Redis connection (flowhq/redis_pool.py). While Redis is down the
increments stay in memory (they are bounded: one entry per series this process
touches) and go out with the next flush that works;
the failure is logged at most once a minute. What is still unsent when the process
is killed outright is lost — a counter that misses a few increments, never a wrong
reply.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import defaultdict

from django.conf import settings

from flowhq.log_throttle import ThrottledWarning
from flowhq.redis_pool import shared_client

log = logging.getLogger(__name__)


class MetricBuffer:
    def __init__(self, redis_url: str, *, interval_s: float) -> None:
        self._client = shared_client(redis_url)
        self._interval = interval_s
        self._pending: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._failed = ThrottledWarning(log, "metrics not sent to Redis; kept for the next try")
        self._thread = threading.Thread(target=self._run, name="metric-buffer", daemon=True)
        self._thread.start()

    def add(self, key: str, field: str, amount: int = 1) -> None:
        with self._lock:
            self._pending[(key, field)] += amount

    def flush(self) -> bool:
        """Send what accumulated; False (and kept for the next try) if Redis did not take it."""
        with self._lock:
            batch, self._pending = self._pending, defaultdict(int)
        if not batch:
            return True
        try:
            pipe = self._client.pipeline(transaction=False)
            for (key, field), amount in batch.items():
                pipe.hincrby(key, field, amount)
            pipe.execute()
            return True
        except Exception as exc:  # whatever went wrong, counting must not break the caller
            with self._lock:
                for item, amount in batch.items():
                    self._pending[item] += amount
            self._failed("redis", exc, series=len(batch))
            return False

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()


_buffer: MetricBuffer | None = None
_buffer_pid = 0
_buffer_lock = threading.Lock()


def metric_buffer() -> MetricBuffer:
    """This process's buffer (a new one after a fork: threads do not survive it)."""
    global _buffer, _buffer_pid
    if _buffer is None or _buffer_pid != os.getpid():
        with _buffer_lock:
            if _buffer is None or _buffer_pid != os.getpid():
                _buffer = MetricBuffer(settings.REDIS_URL, interval_s=settings.METRICS_FLUSH_INTERVAL_MS / 1000)
                _buffer_pid = os.getpid()
                atexit.register(_buffer.flush)
    return _buffer
