"""Worker lifecycle services: start, stop, restart, force-restart.

These only record intent in the database (desired state, host, a new epoch)
and nudge the host's fleet agent; the agent makes the processes match. Every
call locks the worker row first, so concurrent calls serialise and repeated
calls are no-ops: twenty simultaneous starts record one start.

Bumping `epoch` revokes the current process's lease: a process spawned for an
older epoch can no longer heartbeat and stops itself (see workers/lease.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from flowhq.errors import Conflict, NotFound
from tenants.services import tenant_transition
from tenants.states import TenantStatus
from workers.fleet.backoff import failures_after_crash
from workers.models import WorkerProcess
from workers.nudge import nudge_host_on_commit
from workers.placement import choose_host, host_is_live
from workers.states import WORKER_MACHINE, DesiredState, WorkerStatus
from workers.transitions import worker_transition

W = WorkerStatus
NO_HOST = "waiting for a live fleet host"


def _locked(tenant_id: int) -> WorkerProcess:
    try:
        return WorkerProcess.objects.select_for_update().get(tenant_id=tenant_id)
    except WorkerProcess.DoesNotExist:
        raise NotFound(f"No tenant with id {tenant_id}.") from None


def _next_epoch(worker: WorkerProcess) -> dict[str, Any]:
    return {"epoch": worker.epoch + 1}


def _startup_deadline() -> Any:
    return timezone.now() + timedelta(milliseconds=settings.WORKER_STARTUP_GRACE_MS)


@dataclass(frozen=True)
class Outcome:
    """What a command did: `changed` is False when the worker (or session) already was as asked,
    and `message` says which ("start requested", "already running")."""

    worker: WorkerProcess
    changed: bool
    message: str


def _already(worker: WorkerProcess, wanted: DesiredState) -> str:
    """ "already running" / "already starting" / "already stopped" / "already stopping"."""
    if wanted == DesiredState.RUNNING:
        return "already running" if worker.status == W.RUNNING else "already starting"
    return "already stopped" if worker.status == W.STOPPED else "already stopping"


def worker_start(*, tenant_id: int, reason: str = "start requested") -> WorkerProcess:
    """Make the tenant's worker run (placing it on a host); a no-op if it already does."""
    return worker_start_outcome(tenant_id=tenant_id, reason=reason).worker


def worker_start_outcome(*, tenant_id: int, reason: str = "start requested") -> Outcome:
    """`worker_start`, saying whether it changed anything."""
    with transaction.atomic():
        worker = _locked(tenant_id)
        if worker.desired_state == DesiredState.RUNNING and worker.status in (W.STARTING, W.RUNNING, W.STOPPING):
            return Outcome(worker, False, _already(worker, DesiredState.RUNNING))
        host = worker.host if host_is_live(worker.host) else (choose_host() or "")
        fields: dict[str, Any] = {
            "desired_state": DesiredState.RUNNING,
            "host": host,
            "consecutive_failures": 0,
            "force_requested": False,
            "last_error": "" if host else NO_HOST,
            "stale_after": _startup_deadline(),
        }
        # A stop still in progress finishes first; the agent then spawns again.
        to = W.STOPPING if worker.status == W.STOPPING else W.STARTING
        worker = worker_transition(worker_id=worker.pk, to=to, reason=reason, computed=_next_epoch, **fields)
        tenant_transition(tenant_id=tenant_id, to=TenantStatus.STARTING, reason=reason)
        nudge_host_on_commit(host, tenant_id)
    return Outcome(worker, True, "start requested")


def worker_stop(*, tenant_id: int, reason: str = "stop requested") -> WorkerProcess:
    """Stop the tenant's worker gracefully; it stays stopped until started again."""
    return worker_stop_outcome(tenant_id=tenant_id, reason=reason).worker


def worker_stop_outcome(*, tenant_id: int, reason: str = "stop requested") -> Outcome:
    """`worker_stop`, saying whether it changed anything."""
    with transaction.atomic():
        worker = _locked(tenant_id)
        if worker.desired_state == DesiredState.STOPPED and worker.status in (W.STOPPED, W.STOPPING):
            return Outcome(worker, False, _already(worker, DesiredState.STOPPED))
        fields: dict[str, Any] = {"desired_state": DesiredState.STOPPED, "force_requested": False}
        no_process = worker.status == W.STOPPED or not worker.host
        if no_process and not WORKER_MACHINE.can(W(worker.status), W.STOPPED):
            worker_transition(worker_id=worker.pk, to=W.STOPPING, reason=reason)
        to = W.STOPPED if no_process else W.STOPPING
        if no_process:
            fields.update(pid=None, last_error="")
        worker = worker_transition(worker_id=worker.pk, to=to, reason=reason, computed=_next_epoch, **fields)
        tenant_transition(tenant_id=tenant_id, to=TenantStatus.STOPPED, reason=reason)
        nudge_host_on_commit(worker.host, tenant_id)
    return Outcome(worker, True, "stop requested")


def worker_restart(*, tenant_id: int, force: bool = False, reason: str = "") -> WorkerProcess:
    """Replace the running process with a new one.

    `force` kills the current process at once (no grace period) and wipes the
    runtime state (see workers/runtime_state.py) before the next spawn; the
    linked WhatsApp session is kept either way.
    """
    reason = reason or ("force-restart requested" if force else "restart requested")
    with transaction.atomic():
        worker = _locked(tenant_id)
        if worker.desired_state == DesiredState.STOPPED:
            raise Conflict(
                "The worker is stopped: start it instead of restarting it.",
                details={"status": worker.status, "desired_state": worker.desired_state},
            )
        fields: dict[str, Any] = {"force_requested": force, "consecutive_failures": 0, "last_error": ""}
        if not host_is_live(worker.host):
            fields["host"] = choose_host() or ""
            fields["last_error"] = "" if fields["host"] else NO_HOST
        status = W(worker.status)
        to = {W.STARTING: W.STOPPING, W.RUNNING: W.STOPPING, W.ERROR: W.STARTING}.get(status, status)
        if to == W.STARTING:
            fields["stale_after"] = _startup_deadline()
        worker = worker_transition(worker_id=worker.pk, to=to, reason=reason, computed=_next_epoch, **fields)
        tenant_transition(tenant_id=tenant_id, to=TenantStatus.STARTING, reason=reason)
        nudge_host_on_commit(worker.host, tenant_id)
    return worker


def worker_recycle(*, tenant_id: int, epoch: int, reason: str, uptime_ms: float) -> WorkerProcess:
    """Replace a process its agent found unwell (over its memory limit). Counts toward
    WORKER_MAX_CONSECUTIVE_CRASHES like a crash, forgiven like one after a stable run; at the
    cap the tenant goes to ERROR with why, and the agent does not spawn again."""
    limit = settings.WORKER_MAX_CONSECUTIVE_CRASHES
    with transaction.atomic():
        worker = _locked(tenant_id)
        if worker.epoch != epoch or worker.desired_state != DesiredState.RUNNING:
            return worker  # replaced or stopped meanwhile
        failures = failures_after_crash(worker.consecutive_failures, uptime_ms=uptime_ms,
                                        stable_after_ms=settings.WORKER_STABLE_AFTER_MS)
        if failures >= limit:
            reason = f"{reason}; {failures} restarts in a row, giving up (WORKER_MAX_CONSECUTIVE_CRASHES={limit})"
            worker = worker_transition(worker_id=worker.pk, to=W.ERROR, reason=reason, computed=_next_epoch,
                                       consecutive_failures=failures)
            tenant_transition(tenant_id=tenant_id, to=TenantStatus.ERROR, reason=reason, strict=False)
        else:
            to = W.STOPPING if worker.status in (W.STARTING, W.RUNNING) else W(worker.status)
            worker = worker_transition(worker_id=worker.pk, to=to, reason=reason, computed=_next_epoch,
                                       consecutive_failures=failures)
            tenant_transition(tenant_id=tenant_id, to=TenantStatus.STARTING, reason=reason, strict=False)
        nudge_host_on_commit(worker.host, tenant_id)
    return worker


def worker_force_restart(*, tenant_id: int, reason: str = "force-restart requested") -> WorkerProcess:
    return worker_restart(tenant_id=tenant_id, force=True, reason=reason)


def worker_restart_outcome(*, tenant_id: int, reason: str = "") -> Outcome:
    return Outcome(worker_restart(tenant_id=tenant_id, reason=reason), True, "restart requested")


def worker_force_restart_outcome(*, tenant_id: int, reason: str = "force-restart requested") -> Outcome:
    return Outcome(worker_force_restart(tenant_id=tenant_id, reason=reason), True, "force-restart requested")
