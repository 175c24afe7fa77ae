"""Lifecycle services record intent; they are idempotent and refuse what makes no sense."""

from __future__ import annotations

import pytest

from flowhq.errors import Conflict, NotFound
from tenants.states import TenantStatus
from tests.fleet.factories import dead_host, live_host
from workers import lifecycle
from workers.models import WorkerProcess, WorkerTransition
from workers.placement import choose_host
from workers.states import DesiredState, WorkerStatus

W = WorkerStatus


def worker_of(tenant) -> WorkerProcess:
    return WorkerProcess.objects.get(tenant=tenant)


def test_start_places_the_worker_on_the_live_host_with_most_room(make_tenant):
    live_host("small", capacity=2)
    live_host("big", capacity=5)
    dead_host("dead", capacity=100)
    worker = lifecycle.worker_start(tenant_id=make_tenant().pk)
    assert (worker.status, worker.desired_state, worker.host) == (W.STARTING, DesiredState.RUNNING, "big")
    assert worker.tenant.status == TenantStatus.STARTING


def test_placement_counts_what_each_host_already_runs(make_tenant):
    live_host("a", capacity=3)
    live_host("b", capacity=3)
    hosts = [lifecycle.worker_start(tenant_id=make_tenant(f"T{n}").pk).host for n in range(4)]
    assert sorted(hosts) == ["a", "a", "b", "b"]


def test_a_full_fleet_places_nothing(make_tenant):
    live_host("a", capacity=1)
    lifecycle.worker_start(tenant_id=make_tenant("T1").pk)
    assert choose_host() is None
    worker = lifecycle.worker_start(tenant_id=make_tenant("T2").pk)
    assert (worker.status, worker.host) == (W.STARTING, "")
    assert worker.last_error == lifecycle.NO_HOST


def test_start_is_idempotent(tenant):
    live_host("a")
    first = lifecycle.worker_start(tenant_id=tenant.pk)
    again = lifecycle.worker_start(tenant_id=tenant.pk)
    assert again.epoch == first.epoch
    assert WorkerTransition.objects.filter(to_status=W.STARTING).count() == 1


def test_stop_of_an_unplaced_worker_is_immediate(tenant):
    lifecycle.worker_start(tenant_id=tenant.pk)
    worker = lifecycle.worker_stop(tenant_id=tenant.pk)
    assert (worker.status, worker.desired_state) == (W.STOPPED, DesiredState.STOPPED)
    assert worker.tenant.status == TenantStatus.STOPPED


def test_stop_of_a_placed_worker_waits_for_its_agent_and_fences_the_process(tenant):
    live_host("a")
    started = lifecycle.worker_start(tenant_id=tenant.pk)
    stopped = lifecycle.worker_stop(tenant_id=tenant.pk)
    assert stopped.status == W.STOPPING
    assert stopped.epoch == started.epoch + 1
    assert lifecycle.worker_stop(tenant_id=tenant.pk).epoch == stopped.epoch


def test_restart_of_a_stopped_worker_is_refused(tenant):
    with pytest.raises(Conflict, match="start it instead"):
        lifecycle.worker_restart(tenant_id=tenant.pk)


def test_restart_replaces_the_running_process(tenant):
    live_host("a")
    started = lifecycle.worker_start(tenant_id=tenant.pk)
    WorkerProcess.objects.filter(pk=started.pk).update(status=W.RUNNING)
    restarted = lifecycle.worker_restart(tenant_id=tenant.pk)
    assert (restarted.status, restarted.desired_state) == (W.STOPPING, DesiredState.RUNNING)
    assert restarted.epoch == started.epoch + 1
    assert not restarted.force_requested
    forced = lifecycle.worker_force_restart(tenant_id=tenant.pk)
    assert forced.force_requested


def test_start_after_giving_up_clears_the_crash_count(tenant):
    live_host("a")
    lifecycle.worker_start(tenant_id=tenant.pk)
    WorkerProcess.objects.filter(tenant=tenant).update(status=W.ERROR, consecutive_failures=5, last_error="boom")
    worker = lifecycle.worker_start(tenant_id=tenant.pk)
    assert worker.status == W.STARTING
    assert (worker.consecutive_failures, worker.last_error) == (0, "")


def test_unknown_tenant_is_not_found(db):
    with pytest.raises(NotFound):
        lifecycle.worker_start(tenant_id=424242)


def test_memory_restarts_count_toward_the_cap_and_are_forgiven_after_a_stable_run(tenant, settings):
    """A tenant whose worker outgrows its memory on every message must not restart for ever."""
    live_host("a")
    lifecycle.worker_start(tenant_id=tenant.pk)
    WorkerProcess.objects.filter(tenant=tenant).update(status=W.RUNNING)
    limit = settings.WORKER_MAX_CONSECUTIVE_CRASHES
    for restart in range(1, limit):
        worker = worker_of(tenant)
        recycled = lifecycle.worker_recycle(tenant_id=tenant.pk, epoch=worker.epoch, reason="memory 2000 MB",
                                            uptime_ms=1000)
        assert (recycled.status, recycled.consecutive_failures) == (W.STOPPING, restart)
        assert recycled.epoch == worker.epoch + 1
        WorkerProcess.objects.filter(tenant=tenant).update(status=W.RUNNING)
    # After a stable run the count starts again, as for a crash.
    worker = worker_of(tenant)
    stable = lifecycle.worker_recycle(tenant_id=tenant.pk, epoch=worker.epoch, reason="memory 2000 MB",
                                      uptime_ms=settings.WORKER_STABLE_AFTER_MS + 1)
    assert stable.consecutive_failures == 1
    WorkerProcess.objects.filter(tenant=tenant).update(status=W.RUNNING, consecutive_failures=limit - 1)
    worker = worker_of(tenant)
    gave_up = lifecycle.worker_recycle(tenant_id=tenant.pk, epoch=worker.epoch, reason="memory 2000 MB",
                                       uptime_ms=1000)
    assert (gave_up.status, gave_up.consecutive_failures) == (W.ERROR, limit)
    assert gave_up.last_error == (f"memory 2000 MB; {limit} restarts in a row, giving up "
                                  f"(WORKER_MAX_CONSECUTIVE_CRASHES={limit})")
    assert gave_up.tenant.status == TenantStatus.ERROR
    # A report about a process that was replaced meanwhile changes nothing.
    assert lifecycle.worker_recycle(tenant_id=tenant.pk, epoch=worker.epoch, reason="late",
                                    uptime_ms=1).epoch == gave_up.epoch
