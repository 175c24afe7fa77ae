"""The sweep claims stale workers once, moves tenants off dead hosts, places the unplaced."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tenants.states import TenantStatus
from tests.fleet.factories import dead_host, live_host
from workers import lifecycle
from workers.models import FleetHost, WorkerProcess, WorkerTransition
from workers.states import DesiredState, WorkerStatus
from workers.sweep import sweep
from workers.sweep_watch import KEY, SweepWatch, gap_ms

W = WorkerStatus


def watching_since(redis_client, *, ago_ms: int, last_ok_ago_ms: int = 0) -> None:
    now = int(time.time() * 1000)
    redis_client.hset(KEY, mapping={"since": now - ago_ms, "last_ok": now - last_ok_ago_ms})


@pytest.fixture(autouse=True)
def _watched_long_enough(redis_client):
    """Unless a test says otherwise, the sweep has been watching, without a gap, for an hour."""
    watching_since(redis_client, ago_ms=3_600_000)
    yield
    redis_client.delete(KEY)


def running_on(tenant, host: str, *, stale: bool) -> WorkerProcess:
    lifecycle.worker_start(tenant_id=tenant.pk)
    deadline = timezone.now() + (timedelta(seconds=-1) if stale else timedelta(minutes=1))
    WorkerProcess.objects.filter(tenant=tenant).update(
        status=W.RUNNING, host=host, stale_after=deadline, heartbeat_at=timezone.now() - timedelta(seconds=30)
    )
    return WorkerProcess.objects.get(tenant=tenant)


def test_a_worker_past_its_deadline_is_marked_error_and_fenced(make_tenant):
    live_host("a")
    stale = running_on(make_tenant("Stale"), "a", stale=True)
    fresh = running_on(make_tenant("Fresh"), "a", stale=False)
    result = sweep()
    assert result.stale == [stale.tenant_id]
    stale.refresh_from_db()
    assert stale.status == W.ERROR
    assert stale.last_error.startswith("no heartbeat for 30")
    assert stale.epoch > fresh.epoch - 1
    assert stale.consecutive_failures == 1
    assert stale.tenant.status == TenantStatus.ERROR
    fresh.refresh_from_db()
    assert fresh.status == W.RUNNING


def test_two_sweeps_at_once_claim_a_stale_worker_once(make_tenant, transactional_db):
    live_host("a")
    workers = [running_on(make_tenant(f"T{n}"), "a", stale=True) for n in range(10)]
    results, barrier = [], threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(sweep().stale)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = sorted(results[0] + results[1])
    assert claimed == sorted(w.tenant_id for w in workers)
    assert WorkerTransition.objects.filter(to_status=W.ERROR).count() == 10


def test_tenants_of_a_dead_agent_move_to_a_live_host(make_tenant):
    live_host("b")
    dead_host("a")
    worker = running_on(make_tenant(), "a", stale=False)
    result = sweep()
    assert result.moved == [worker.tenant_id]
    worker.refresh_from_db()
    assert (worker.status, worker.host) == (W.ERROR, "b")
    assert worker.last_error == "fleet agent on a stopped heartbeating; moved to b"


def test_with_no_live_host_a_moved_tenant_waits_unplaced_then_gets_one(make_tenant):
    dead_host("a")
    worker = running_on(make_tenant(), "a", stale=False)
    sweep()
    worker.refresh_from_db()
    assert (worker.host, worker.desired_state) == ("", DesiredState.RUNNING)
    live_host("b")
    assert sweep().placed == [worker.tenant_id]
    worker.refresh_from_db()
    assert worker.host == "b"


def test_a_stop_on_a_dead_host_completes_once_the_lease_lapsed(make_tenant):
    dead_host("a")
    worker = running_on(make_tenant(), "a", stale=False)
    WorkerProcess.objects.filter(pk=worker.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    lifecycle.worker_stop(tenant_id=worker.tenant_id)
    assert sweep().stopped == []
    WorkerProcess.objects.filter(pk=worker.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweep().stopped == [worker.tenant_id]
    worker.refresh_from_db()
    assert worker.status == W.STOPPED


def test_an_idle_fleet_sweeps_to_nothing(make_tenant):
    live_host("a")
    running_on(make_tenant(), "a", stale=False)
    assert not any(sweep().as_dict().values())
    assert FleetHost.objects.count() == 1


def test_after_a_blind_spell_the_sweep_judges_nothing_until_heartbeats_could_have_come(make_tenant, redis_client):
    """A database outage stops every heartbeat; the first sweeps afterwards must not call that death."""
    live_host("b")
    dead_host("a")
    stale = running_on(make_tenant("Stale"), "b", stale=True)
    on_dead = running_on(make_tenant("OnDead"), "a", stale=False)
    # The last successful sweep was longer ago than a live record can go without a heartbeat.
    watching_since(redis_client, ago_ms=3_600_000, last_ok_ago_ms=gap_ms() + 1000)
    result = sweep()
    assert (result.stale, result.moved) == ([], [])
    assert sweep().stale == []  # still inside the grace
    for worker in (stale, on_dead):
        worker.refresh_from_db()
        assert worker.status == W.RUNNING
    assert SweepWatch().watched_ms() < settings.STALE_THRESHOLD_MS
    # Heartbeats had STALE_THRESHOLD_MS to arrive since the sweep could see again: now it judges.
    watching_since(redis_client, ago_ms=settings.STALE_THRESHOLD_MS + 10)
    result = sweep()
    assert result.stale == [stale.tenant_id]
    assert result.moved == [on_dead.tenant_id]


def test_a_sweep_with_no_record_of_earlier_sweeps_waits_too(make_tenant, redis_client):
    """Redis restarted (the watch is gone): the sweep cannot know it watched, so it waits."""
    live_host("a")
    stale = running_on(make_tenant(), "a", stale=True)
    redis_client.delete(KEY)
    assert sweep().stale == []
    stale.refresh_from_db()
    assert stale.status == W.RUNNING


def test_a_stall_after_a_stable_run_is_forgiven_like_a_crash(make_tenant):
    live_host("a")
    worker = running_on(make_tenant(), "a", stale=True)
    stable = timedelta(milliseconds=settings.WORKER_STABLE_AFTER_MS + 1000)
    WorkerProcess.objects.filter(pk=worker.pk).update(consecutive_failures=settings.WORKER_MAX_CONSECUTIVE_CRASHES - 1,
                                                      started_at=worker.heartbeat_at - stable)
    sweep()
    worker.refresh_from_db()
    assert worker.consecutive_failures == 1
    assert "giving up" not in worker.last_error


def test_stalls_in_a_row_give_up_and_say_so(make_tenant):
    live_host("a")
    worker = running_on(make_tenant(), "a", stale=True)
    limit = settings.WORKER_MAX_CONSECUTIVE_CRASHES
    WorkerProcess.objects.filter(pk=worker.pk).update(consecutive_failures=limit - 1, started_at=worker.heartbeat_at)
    sweep()
    worker.refresh_from_db()
    assert worker.consecutive_failures == limit
    assert f"stalled {limit} times in a row, giving up" in worker.last_error
    assert "giving up" in worker.tenant.status_reason


def test_a_long_sweep_keeps_the_watch_open_for_the_sweeps_that_run_meanwhile(make_tenant, redis_client, settings,
                                                                              transactional_db):
    """250 moves took 20 s at scale; a sweep started meanwhile took that for a blind spell and
    held every judgement back by STALE_THRESHOLD_MS."""
    settings.STALE_THRESHOLD_MS = 1500  # gap_ms() = 1.5 s
    live_host("b", capacity=100)
    dead_host("a")
    moving = [running_on(make_tenant(f"Moving {n}"), "a", stale=False).tenant_id for n in range(20)]
    with connection.cursor() as cursor:  # each move takes 0.1 s: a loaded database
        cursor.execute("""CREATE FUNCTION slow_transition() RETURNS trigger AS $$
                          BEGIN PERFORM pg_sleep(0.1); RETURN NEW; END $$ LANGUAGE plpgsql;
                          CREATE TRIGGER slow BEFORE INSERT ON workers_workertransition
                          FOR EACH ROW EXECUTE FUNCTION slow_transition();""")
    try:
        results = []

        def sweep_in_a_thread() -> None:
            try:
                results.append(sweep())
            finally:
                connection.close()

        long_sweep = threading.Thread(target=sweep_in_a_thread)
        long_sweep.start()
        time.sleep(gap_ms() / 1000 + 0.3)
        watched_meanwhile = SweepWatch().watched_ms()
        long_sweep.join(30)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER slow ON workers_workertransition; DROP FUNCTION slow_transition();")
    assert sorted(results[0].moved) == sorted(moving)
    assert watched_meanwhile > settings.STALE_THRESHOLD_MS
