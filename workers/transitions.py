"""The one function that changes a worker's status, and records why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from flowhq.state_machine import move
from workers import signals
from workers.models import WorkerProcess, WorkerTransition
from workers.states import WORKER_MACHINE, WorkerStatus


def worker_transition(
    *,
    worker_id: int,
    to: WorkerStatus,
    reason: str,
    guard: Callable[[WorkerProcess], None] | None = None,
    computed: Callable[[WorkerProcess], dict[str, Any]] | None = None,
    **fields: Any,
) -> WorkerProcess:
    """Move a worker to `to` (refusing illegal moves) and write `fields` with it.

    A move to the status the worker already has writes only `fields` and
    records nothing. `guard` runs on the locked row and may raise to refuse;
    `computed` returns more fields from the locked row (e.g. `epoch + 1`).
    """
    if to == WorkerStatus.ERROR:
        fields.setdefault("last_error", reason)

    def values(worker: WorkerProcess) -> dict[str, Any]:
        merged = {**fields, **(computed(worker) if computed else {})}
        if "last_error" in merged:
            merged["last_error"] = (merged["last_error"] or "")[:500]
        return merged

    with transaction.atomic():
        worker, previous = move(
            WorkerProcess, worker_id, machine=WORKER_MACHINE, field="status", to=to,
            fields=values, guard=guard,
        )
        if previous != to:
            WorkerTransition.objects.create(
                worker=worker, from_status=previous, to_status=to, reason=reason[:500],
                host=worker.host, epoch=worker.epoch,
            )
            signals.worker_status_changed.send(sender=WorkerProcess, worker=worker, previous=previous, reason=reason)
    return worker


class Superseded(Exception):
    """The calling process's epoch is no longer the tenant's current one."""


def current_worker_transition(*, tenant_id: int, epoch: int, to: WorkerStatus, reason: str,
                              **fields: Any) -> WorkerProcess:
    """For the worker process itself: move its record only while `epoch` is still current."""

    def same_epoch(worker: WorkerProcess) -> None:
        if worker.epoch != epoch:
            raise Superseded("the worker was restarted or stopped meanwhile")

    worker_id = WorkerProcess.objects.values_list("pk", flat=True).get(tenant_id=tenant_id)
    return worker_transition(worker_id=worker_id, to=to, reason=reason, guard=same_epoch, **fields)
