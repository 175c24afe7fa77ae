"""The lease: one holder at a time, a successor waits, a superseded holder is told."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone

from workers.lease import Acquire, LocalLease, lease_acquire, lease_release, lease_renew
from workers.models import WorkerProcess


def set_epoch(tenant, epoch: int) -> None:
    WorkerProcess.objects.filter(tenant=tenant).update(epoch=epoch)


def test_the_current_epoch_acquires_and_renews(tenant):
    set_epoch(tenant, 3)
    assert lease_acquire(tenant_id=tenant.pk, epoch=3, ttl_ms=5000) is Acquire.ACQUIRED
    assert lease_renew(tenant_id=tenant.pk, epoch=3, ttl_ms=5000)
    worker = WorkerProcess.objects.get(tenant=tenant)
    assert worker.lease_epoch == 3
    assert worker.lease_expires_at > timezone.now()
    assert worker.stale_after > timezone.now()


def test_a_superseded_process_can_neither_acquire_nor_renew(tenant):
    set_epoch(tenant, 3)
    lease_acquire(tenant_id=tenant.pk, epoch=3, ttl_ms=5000)
    set_epoch(tenant, 4)
    assert not lease_renew(tenant_id=tenant.pk, epoch=3, ttl_ms=5000)
    assert lease_acquire(tenant_id=tenant.pk, epoch=3, ttl_ms=5000) is Acquire.SUPERSEDED


def test_a_successor_waits_until_the_old_lease_is_released_or_lapses(tenant):
    set_epoch(tenant, 3)
    lease_acquire(tenant_id=tenant.pk, epoch=3, ttl_ms=60000)
    set_epoch(tenant, 4)
    assert lease_acquire(tenant_id=tenant.pk, epoch=4, ttl_ms=60000) is Acquire.HELD
    lease_release(tenant_id=tenant.pk, epoch=3)
    assert lease_acquire(tenant_id=tenant.pk, epoch=4, ttl_ms=60000) is Acquire.ACQUIRED
    WorkerProcess.objects.filter(tenant=tenant).update(epoch=5, lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lease_acquire(tenant_id=tenant.pk, epoch=5, ttl_ms=60000) is Acquire.ACQUIRED


def test_releasing_an_old_epoch_never_frees_the_new_holder(tenant):
    set_epoch(tenant, 4)
    lease_acquire(tenant_id=tenant.pk, epoch=4, ttl_ms=60000)
    lease_release(tenant_id=tenant.pk, epoch=3)
    assert WorkerProcess.objects.get(tenant=tenant).lease_epoch == 4


def test_the_holder_gives_up_before_the_database_would_let_a_successor_in():
    lease = LocalLease(ttl_ms=300)
    sent = lease.renewal_sent()
    lease.renewed(sent)
    assert lease.valid()
    assert lease.remaining() <= 0.3 - lease.margin
    time.sleep(0.3 - lease.margin + 0.01)
    assert not lease.valid()
