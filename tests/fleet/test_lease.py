"""The lease: one holder at a time, a successor waits, a superseded holder is told."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
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


RENEWED = ("stale_after", "heartbeat_at", "lease_expires_at")


def _table_counts() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's pending counts, once idle
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = %s",
                       [WorkerProcess._meta.db_table])
        upd, hot = cursor.fetchone()
    return upd, hot


@pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's")
def test_a_heartbeat_is_a_hot_update_that_writes_no_index_entry(make_tenant, transactional_db):
    table = WorkerProcess._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [table])
        options = cursor.fetchone()[0] or []
    assert not [d for d in indexes if any(column in d for column in RENEWED)], indexes
    assert "fillfactor=70" in options
    tenant = make_tenant("Acme")
    WorkerProcess.objects.filter(tenant=tenant).update(epoch=3)
    assert lease_acquire(tenant_id=tenant.pk, epoch=3, ttl_ms=5000) is Acquire.ACQUIRED
    upd0, hot0 = _table_counts()
    for _ in range(20):
        assert lease_renew(tenant_id=tenant.pk, epoch=3, ttl_ms=5000)
    upd1, hot1 = _table_counts()
    assert upd1 - upd0 == 20
    assert hot1 - hot0 == 20
