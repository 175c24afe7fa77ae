"""Commands to a tenant's running bot, through its queue `tenant.<id>`.

Like nudges to agents, these only make a change fast: the database holds the
work (pending messages, templates), and the bot picks it up on its own when
it becomes ready. So a command lost with the broker costs latency, not data.
"""

from __future__ import annotations

import logging

from django.db import transaction

from tenants.messages import outgoing_create
from tenants.models import MessageLog, Tenant

log = logging.getLogger(__name__)


def tenant_queue(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def _send_on_commit(task_name: str, tenant_id: int) -> None:
    """Send once the transaction commits — and only once per transaction, however many
    changes in it asked (an admin page saving ten templates reloads the bot once)."""
    from flowhq.celery import app

    key = (task_name, tenant_id)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        getattr(callback, "command", None) == key for _, callback, _ in connection.run_on_commit
    ):
        return

    def send() -> None:
        try:
            app.send_task(task_name, args=[tenant_id], queue=tenant_queue(tenant_id), retry=False)
        except Exception as exc:
            log.warning("could not reach the tenant's worker", extra={"tenant": tenant_id, "task": task_name,
                                                                      "error": str(exc)})

    send.command = key  # type: ignore[attr-defined]
    transaction.on_commit(send)


def send_text(*, tenant: Tenant, to: str, body: str) -> MessageLog:
    """Queue a text for the tenant's bot to send; it is logged like any outgoing message."""
    with transaction.atomic():
        entry = outgoing_create(tenant=tenant, to=to, body=body)
        _send_on_commit("bot.flush_outbox", tenant.pk)
    return entry


def templates_changed(tenant_id: int) -> None:
    """Tell the running bot to reload its templates (no restart needed)."""
    _send_on_commit("bot.reload_templates", tenant_id)
