"""The sweep's own watch: a missed heartbeat counts only if the sweep could have seen it.

Agents and workers heartbeat into the database, so while the database is out
every heartbeat stops at once, and the sweep (which reads the database too)
cannot tell that from every host dying. The sweep therefore judges liveness
only over time it has watched without a gap: each successful sweep records
itself in Redis, and after a gap longer than a live record could miss
heartbeats in (`gap_ms`), the watch restarts, and nothing is judged stale until
it has watched for STALE_THRESHOLD_MS again — long enough for every live agent
and worker to have heartbeated since the database came back. The clock is
Redis's own (`TIME`), the same for every host that sweeps.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from flowhq.redis_pool import shared_client
from workers.periodic import sweep_every_seconds

log = logging.getLogger(__name__)
KEY = "flowhq:sweep:watch"
# How often a long sweep records its progress (well inside any gap_ms()).
PROGRESS_EVERY_S = 1.0


def gap_ms() -> int:
    """The longest pause between two successful sweeps that still counts as watching: shorter
    than a live record can go without a heartbeat, longer than the sweep's own period."""
    return max(settings.STALE_THRESHOLD_MS - settings.HEARTBEAT_INTERVAL_MS, int(1500 * sweep_every_seconds()))


class SweepWatch:
    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client or shared_client(settings.REDIS_URL)
        self._recorded_at = float("-inf")

    def _now_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def watched_ms(self) -> int:
        """How long the sweep has watched without a gap, up to now (0 right after a gap)."""
        now = self._now_ms()
        last_ok, since = (int(v) if v is not None else None for v in self.client.hmget(KEY, "last_ok", "since"))
        if last_ok is None or since is None or now - last_ok > gap_ms():
            if last_ok is not None:
                log.warning("the sweep was blind (no successful sweep for a while): liveness is not judged "
                            "until every record had time to heartbeat", extra={"blind_ms": now - last_ok})
            self.client.hset(KEY, mapping={"since": now})
            return 0
        return now - since

    def succeeded(self) -> None:
        """Record a sweep that read and wrote the database."""
        self.client.hset(KEY, mapping={"last_ok": self._now_ms()})
        self._recorded_at = time.monotonic()

    def progress(self) -> None:
        """A long sweep's committed claim (the database read and wrote), recorded at most once a
        second: a sweep that moves hundreds of tenants takes longer than the gap, and the
        sweeps beat starts meanwhile must not take its silence for a blind spell."""
        if time.monotonic() - self._recorded_at >= PROGRESS_EVERY_S:
            self.succeeded()
