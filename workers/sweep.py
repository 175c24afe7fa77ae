"""The stale sweep: catch workers that hang and hosts whose agent died.

Run periodically by Celery beat (see workers/periodic.py). Every claim locks
the row and re-checks its condition before writing, so two sweeps running at
once, or a sweep racing a late heartbeat, cannot both act on the same worker.
The stale query scans the workers table (one small row per tenant: 4 ms at
100,000 rows): `stale_after` has no index, so that every heartbeat, which
moves it, is a HOT update that writes no index entry (workers/models.py).

A database outage stops every heartbeat at once; it is not a host outage. The
sweep judges liveness only once it has watched, without a gap, for as long as
a heartbeat may take (workers/sweep_watch.py), so no tenant moves because of
the outage itself. A sweep that moves hundreds of tenants takes longer than
that gap, so it records its progress as it commits (`SweepWatch.progress`):
the sweeps beat starts meanwhile see a sweep at work, not a blind spell.

A stall counts toward WORKER_MAX_CONSECUTIVE_CRASHES like a crash, and like a
crash is forgiven when the worker had run for WORKER_STABLE_AFTER_MS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from tenants.services import tenant_transition
from tenants.states import TenantStatus
from workers.fleet.backoff import failures_after_crash
from workers.models import FleetHost, WorkerProcess
from workers.nudge import nudge_host_on_commit
from workers.placement import choose_host
from workers.states import LIVE_STATUSES, DesiredState, WorkerStatus
from workers.sweep_watch import SweepWatch
from workers.transitions import worker_transition

log = logging.getLogger(__name__)
W = WorkerStatus
BATCH = 500


class _Moved(Exception):
    """The row changed since it was selected: another actor got there first."""


@dataclass
class SweepResult:
    stale: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    placed: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"stale": self.stale, "moved": self.moved, "placed": self.placed, "stopped": self.stopped}


def sweep(watch: SweepWatch | None = None) -> SweepResult:
    result = SweepResult()
    watch = watch or SweepWatch()
    judging = watch.watched_ms() >= settings.STALE_THRESHOLD_MS
    stale_hosts: list[str] = []
    progress = watch.progress
    if judging:
        stale_hosts = list(FleetHost.objects.filter(stale_after__lt=Now()).values_list("name", flat=True))
        result.stale = claim_stale_workers(skip_hosts=stale_hosts, progress=progress)
        result.moved = move_off_stale_hosts(stale_hosts, progress=progress)
    result.placed = place_unplaced(progress=progress)
    result.stopped = finish_abandoned_stops(stale_hosts, progress=progress)
    watch.succeeded()
    if any(result.as_dict().values()):
        log.info("sweep acted", extra=result.as_dict())
    return result


def _claim(worker_id: int, *, to: WorkerStatus, reason: str, check: Any, **fields: Any) -> WorkerProcess | None:
    def guard(worker: WorkerProcess) -> None:
        if not check(worker):
            raise _Moved

    try:
        return worker_transition(worker_id=worker_id, to=to, reason=reason, guard=guard, **fields)
    except _Moved:
        return None


def _nothing() -> None:
    return None


def claim_stale_workers(*, skip_hosts: list[str], progress: Callable[[], None] = _nothing) -> list[int]:
    """Mark live workers whose heartbeat deadline passed ERROR, and ask for recovery.

    Bumping the epoch fences the hung process; its agent replaces it.
    Workers on hosts whose agent is itself stale are moved instead.
    """
    now = timezone.now()
    limit = settings.WORKER_MAX_CONSECUTIVE_CRASHES
    candidates = (
        WorkerProcess.objects.filter(status__in=LIVE_STATUSES, stale_after__lt=Now())
        .exclude(host__in=[*skip_hosts, ""])
        .order_by("pk").values_list("pk", "tenant_id", "heartbeat_at", "started_at", "consecutive_failures")[:BATCH]
    )
    claimed = []
    for worker_id, tenant_id, heartbeat_at, started_at, failures in candidates:
        silence = f"{(now - heartbeat_at).total_seconds():.1f}s" if heartbeat_at else "ever since it was spawned"
        # It ran healthily from its start until its last heartbeat.
        ran_ms = (heartbeat_at - started_at).total_seconds() * 1000 if heartbeat_at and started_at else 0.0
        failures = failures_after_crash(failures, uptime_ms=ran_ms, stable_after_ms=settings.WORKER_STABLE_AFTER_MS)
        reason = f"no heartbeat for {silence} (STALE_THRESHOLD_MS={settings.STALE_THRESHOLD_MS})"
        if failures >= limit:
            reason += f"; stalled {failures} times in a row, giving up (WORKER_MAX_CONSECUTIVE_CRASHES={limit})"
        with transaction.atomic():
            worker = _claim(
                worker_id, to=W.ERROR, reason=reason,
                check=lambda w: w.status in LIVE_STATUSES and w.stale_after is not None and w.stale_after < now,
                computed=lambda w: {"epoch": w.epoch + 1},
                consecutive_failures=failures,
            )
            if worker is None:
                continue
            tenant_transition(tenant_id=tenant_id, to=TenantStatus.ERROR, reason=reason, strict=False)
            nudge_host_on_commit(worker.host, tenant_id)
        claimed.append(tenant_id)
        progress()
    return claimed


def move_off_stale_hosts(stale_hosts: list[str], *, progress: Callable[[], None] = _nothing) -> list[int]:
    """Place the tenants of dead agents on live hosts.

    The old process may still be running (a dead agent is not a dead host):
    the new epoch fences it, and the new process waits for its lease to lapse.
    """
    if not stale_hosts:
        return []
    candidates = WorkerProcess.objects.filter(
        host__in=stale_hosts, desired_state=DesiredState.RUNNING,
        consecutive_failures__lt=settings.WORKER_MAX_CONSECUTIVE_CRASHES,
    ).order_by("pk").values_list("pk", "tenant_id", "host")[:BATCH]
    moved = []
    for worker_id, tenant_id, old_host in candidates:
        target = choose_host(exclude=stale_hosts) or ""
        where = f"moved to {target}" if target else "no live host to move to"
        reason = f"fleet agent on {old_host} stopped heartbeating; {where}"
        with transaction.atomic():
            worker = _claim(
                worker_id, to=W.ERROR, reason=reason,
                check=lambda w, old=old_host: w.host == old and w.desired_state == DesiredState.RUNNING,
                computed=lambda w: {"epoch": w.epoch + 1},
                host=target, pid=None,
            )
            if worker is None:
                continue
            tenant_transition(tenant_id=tenant_id, to=TenantStatus.ERROR, reason=reason, strict=False)
            nudge_host_on_commit(target, tenant_id)
        moved.append(tenant_id)
        progress()
    return moved


def place_unplaced(*, progress: Callable[[], None] = _nothing) -> list[int]:
    """Give a host to workers that want to run but have none (no host was live)."""
    candidates = WorkerProcess.objects.filter(desired_state=DesiredState.RUNNING, host="").values_list(
        "pk", "tenant_id", "status"
    )[:BATCH]
    placed = []
    for worker_id, tenant_id, status in candidates:
        target = choose_host()
        if target is None:
            break
        with transaction.atomic():
            worker = _claim(
                worker_id, to=W(status), reason=f"placed on {target}",
                check=lambda w: w.host == "" and w.desired_state == DesiredState.RUNNING,
                host=target, last_error="",
                stale_after=timezone.now() + timedelta(milliseconds=settings.WORKER_STARTUP_GRACE_MS),
            )
            if worker is None:
                continue
            nudge_host_on_commit(target, tenant_id)
        placed.append(tenant_id)
        progress()
    return placed


def finish_abandoned_stops(stale_hosts: list[str], *, progress: Callable[[], None] = _nothing) -> list[int]:
    """Complete stops that no agent will confirm (no host, or a dead one) once the lease lapsed."""
    candidates = (
        WorkerProcess.objects.filter(status=W.STOPPING, desired_state=DesiredState.STOPPED)
        .filter(Q(host="") | Q(host__in=stale_hosts))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now()))
        .values_list("pk", "tenant_id")[:BATCH]
    )
    stopped = []
    for worker_id, tenant_id in candidates:
        with transaction.atomic():
            worker = _claim(
                worker_id, to=W.STOPPED, reason="stopped (no live agent to confirm; lease lapsed)",
                check=lambda w: w.status == W.STOPPING and w.desired_state == DesiredState.STOPPED,
                pid=None,
            )
        if worker is not None:
            stopped.append(tenant_id)
            progress()
    return stopped
