"""The one function that changes a worker's status, and records why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from flowhq.state_machine import move
from workers.models import WorkerProcess, WorkerTransition
from workers.states import WORKER_MACHINE, WorkerStatus


def worker_transition(
    *,
    worker_id: int,
    to: WorkerStatus,
    reason: str,
    guard: Callable[[WorkerProcess], None] | None = None,
    **fields: Any,
) -> WorkerProcess:
    """Move a worker to `to` (refusing illegal moves) and write `fields` with it.

    A move to the status the worker already has writes only `fields` and
    records nothing. `guard` runs on the locked row and may raise to refuse.
    """
    if to == WorkerStatus.ERROR:
        fields.setdefault("last_error", reason)
    if "last_error" in fields:
        fields["last_error"] = (fields["last_error"] or "")[:500]
    with transaction.atomic():
        worker, previous = move(
            WorkerProcess, worker_id, machine=WORKER_MACHINE, field="status", to=to,
            fields=fields, guard=guard,
        )
        if previous != to:
            WorkerTransition.objects.create(
                worker=worker, from_status=previous, to_status=to, reason=reason[:500],
                host=worker.host, epoch=worker.epoch,
            )
    return worker
