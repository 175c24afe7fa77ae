"""The tenant lease: at most one process may act for a tenant at any moment.

Each spawned process carries the epoch it was spawned for. It may act only
while (a) the worker row still has that epoch and (b) it holds the lease, i.e.
`lease_epoch` is its epoch and `lease_expires_at` (database clock) is ahead.
A heartbeat renews the lease and moves `stale_after` in one UPDATE by primary
key; if that UPDATE matches no row the process has been superseded and stops.

A new process acquires the lease only once the previous holder released it or
let it lapse. The holder considers its lease valid only until
`time the renewal was sent + ttl - margin` on its own monotonic clock, which
is always earlier than the expiry the database recorded, so the old holder has
stopped acting before a new one can start — even when it cannot reach the
database to learn it was replaced.
"""

from __future__ import annotations

import enum
import time

from django.db.models import Q
from django.db.models.functions import Now

from workers.dbtime import db_now_plus
from workers.models import WorkerProcess


class Acquire(enum.Enum):
    ACQUIRED = "acquired"
    HELD = "held by another process"
    SUPERSEDED = "superseded by a newer epoch"


def lease_acquire(*, tenant_id: int, epoch: int, ttl_ms: int) -> Acquire:
    free = Q(lease_epoch=epoch) | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now())
    updated = (
        WorkerProcess.objects.filter(tenant_id=tenant_id, epoch=epoch)
        .filter(free)
        .update(
            lease_epoch=epoch, lease_expires_at=db_now_plus(ttl_ms),
            heartbeat_at=Now(), stale_after=db_now_plus(ttl_ms),
        )
    )
    if updated:
        return Acquire.ACQUIRED
    if WorkerProcess.objects.filter(tenant_id=tenant_id, epoch=epoch).exists():
        return Acquire.HELD
    return Acquire.SUPERSEDED


def lease_renew(*, tenant_id: int, epoch: int, ttl_ms: int) -> bool:
    """The heartbeat: one UPDATE by the tenant's unique key. False: superseded."""
    return bool(
        WorkerProcess.objects.filter(tenant_id=tenant_id, epoch=epoch, lease_epoch=epoch).update(
            lease_expires_at=db_now_plus(ttl_ms), heartbeat_at=Now(), stale_after=db_now_plus(ttl_ms)
        )
    )


def lease_release(*, tenant_id: int, epoch: int) -> None:
    """Give the lease up at once, so a successor need not wait for it to lapse."""
    WorkerProcess.objects.filter(tenant_id=tenant_id, lease_epoch=epoch).update(
        lease_epoch=None, lease_expires_at=None
    )


class LocalLease:
    """The holder's own view of its lease, on the monotonic clock."""

    def __init__(self, ttl_ms: int) -> None:
        self.ttl = ttl_ms / 1000
        self.margin = min(1.0, self.ttl / 10)
        self._valid_until = 0.0

    def renewal_sent(self) -> float:
        return time.monotonic()

    def renewed(self, sent_at: float) -> None:
        self._valid_until = sent_at + self.ttl - self.margin

    def revoke(self) -> None:
        self._valid_until = 0.0

    def valid(self) -> bool:
        return time.monotonic() < self._valid_until

    def remaining(self) -> float:
        return max(0.0, self._valid_until - time.monotonic())
