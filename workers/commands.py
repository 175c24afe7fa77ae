"""Commands to a tenant's running bot, as nudges through its queue `tenant.<id>`
(see workers/nudge.py): the database holds the work (pending messages,
templates), and the bot also picks it up by itself when it becomes ready."""

from __future__ import annotations

from django.db import transaction

from tenants.messages import outgoing_create
from tenants.models import MessageLog, Tenant
from workers.nudge import nudge_on_commit, tenant_queue

UNREACHABLE = "could not reach the tenant's worker"


def send_text(*, tenant: Tenant, to: str, body: str) -> MessageLog:
    """Queue a text for the tenant's bot to send; it is logged like any outgoing message."""
    with transaction.atomic():
        entry = outgoing_create(tenant=tenant, to=to, body=body)
        nudge_on_commit("bot.flush_outbox", tenant.pk, tenant_queue(tenant.pk), failure=UNREACHABLE)
    return entry


def templates_changed(tenant_id: int) -> None:
    """Tell the running bot to reload its templates (no restart needed)."""
    nudge_on_commit("bot.reload_templates", tenant_id, tenant_queue(tenant_id), failure=UNREACHABLE)
