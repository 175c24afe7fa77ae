"""Nudges: Celery messages that make a change fast — to a host's fleet agent
("look at this tenant now", queue `fleet.<host>`) or to a tenant's bot
("reload your templates", "send what is queued", queue `tenant.<id>`).

A nudge is only a hint. The database holds the desired state and the work, and
agents and bots reconcile against it on their own (every interval, and when a
bot becomes ready), so a nudge lost with the broker costs latency, never
correctness. That is why a failure to send one is logged and swallowed, and
why it expires: a stale nudge is worth nothing.
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)
EXPIRES_S = 300


def fleet_queue(host: str) -> str:
    return f"fleet.{host}"


def tenant_queue(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def nudge_on_commit(task_name: str, tenant_id: int, queue: str, *, failure: str = "could not send a nudge") -> None:
    """Send `task_name(tenant_id)` to `queue` once the transaction commits — once per
    transaction, however many changes in it asked (ten templates saved on one admin
    page reload the bot once)."""
    key = (task_name, tenant_id, queue)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "nudge", None) == key for _, callback, _ in connection.run_on_commit
    ):
        return

    def send() -> None:
        from flowhq.celery import app

        try:
            app.send_task(task_name, args=[tenant_id], queue=queue, retry=False, expires=EXPIRES_S)
        except Exception as exc:  # the broker is down: reconciliation catches up
            log.warning(failure, extra={"task": task_name, "queue": queue, "tenant": tenant_id,
                                                         "error": str(exc)})

    # The key marks the callback so that the check above finds it; functions take attributes, mypy's don't.
    send.nudge = key  # type: ignore[attr-defined]
    transaction.on_commit(send)


def nudge_host_on_commit(host: str, tenant_id: int) -> None:
    if host:
        nudge_on_commit("fleet.nudge", tenant_id, fleet_queue(host), failure="could not nudge fleet agent")
