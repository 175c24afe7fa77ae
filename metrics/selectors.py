"""Fleet-wide figures read from the database when Prometheus scrapes /metrics.

Each is one aggregate query: the tables with one row per tenant (tenants, sessions,
workers) and the hosts are read whole, so a scrape grows with the number of tenants,
never with the number of messages; pending messages are counted on the partial index
`message_log_pending`, which holds only those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import Now

from tenants.messages import PENDING
from tenants.models import MessageLog, Tenant, WhatsAppSession
from workers.models import FleetHost, WorkerProcess


@dataclass(frozen=True)
class HostFigures:
    name: str
    capacity: int
    live: bool
    draining: bool


def workers_by_host_and_status() -> dict[tuple[str, str], int]:
    rows = WorkerProcess.objects.values("host", "status").annotate(n=Count("id")).order_by()
    return {(row["host"], row["status"]): row["n"] for row in rows}


def sessions_by_state() -> dict[str, int]:
    rows = WhatsAppSession.objects.values("state").annotate(n=Count("id")).order_by()
    return {row["state"]: row["n"] for row in rows}


def tenants_by_status() -> dict[str, int]:
    rows = Tenant.objects.values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def fleet_hosts() -> list[HostFigures]:
    """Every registered host; live while its agent's heartbeat deadline (database time) is ahead."""
    rows = FleetHost.objects.annotate(
        live=ExpressionWrapper(Q(stale_after__gt=Now()), output_field=BooleanField())
    ).values_list("name", "capacity", "live", "draining")
    return [HostFigures(name, capacity, bool(live), draining) for name, capacity, live, draining in rows]


def pending_messages_by_direction() -> dict[str, int]:
    rows = (MessageLog.objects.filter(status__in=PENDING).values("direction").annotate(n=Count("id")).order_by())
    return {row["direction"]: row["n"] for row in rows}


def webhook_backlog() -> int | None:
    """Webhook events waiting for delivery; None while the webhooks app is not installed."""
    if not apps.is_installed("webhooks"):
        return None
    # Imported here, not above: its models cannot load while the app is not installed.
    from webhooks.selectors import backlog_count

    return backlog_count()
