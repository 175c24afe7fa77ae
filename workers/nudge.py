"""Nudges to fleet agents: "look at this tenant now".

A nudge is only a hint that makes a change fast. The database holds the desired
state, and every agent reconciles against it on its own schedule, so a nudge
lost with the broker costs latency, never correctness. That is why a failure
to send one is logged and swallowed.
"""

from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def fleet_queue(host: str) -> str:
    return f"fleet.{host}"


def nudge_host_on_commit(host: str, tenant_id: int) -> None:
    if host:
        transaction.on_commit(lambda: nudge_host(host, tenant_id))


def nudge_host(host: str, tenant_id: int) -> None:
    from workers.tasks import fleet_nudge

    try:
        fleet_nudge.apply_async(args=[tenant_id], queue=fleet_queue(host), retry=False, expires=300)
    except Exception as exc:  # the broker is down: the agent's reconcile loop will catch up
        log.warning("could not nudge fleet agent", extra={"host": host, "tenant": tenant_id, "error": str(exc)})
