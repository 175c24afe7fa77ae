"""Celery tasks of the fleet: thin entry points into the services."""

from __future__ import annotations

import logging

from celery import shared_task

from workers.sweep import sweep

log = logging.getLogger(__name__)


@shared_task(name="fleet.nudge", ignore_result=True, acks_late=False)
def fleet_nudge(tenant_id: int) -> None:
    """Sent to `fleet.<host>`: that host's agent reconciles the tenant now."""
    from workers.fleet.agent import current_agent

    agent = current_agent()
    if agent is None:
        log.warning("nudge reached a process without a fleet agent", extra={"tenant": tenant_id})
        return
    agent.nudge(tenant_id)


# Task events (Flower's task list) are kept for the tasks operators follow — lifecycle nudges,
# bot commands, webhook deliveries — not for the periodic sweeps that run every few seconds.
@shared_task(name="fleet.sweep", ignore_result=True, acks_late=False, send_events=False)
def sweep_stale_workers() -> dict[str, list[int]]:
    """Run by Celery beat on the `control` queue (any fleet agent consumes it)."""
    return sweep().as_dict()


def _submit_to_bot(tenant_id: int, what: str) -> None:
    from workers.runtime.runner import current_runner

    runner = current_runner()
    if runner.ctx.tenant_id != tenant_id:
        log.error("command for another tenant reached this worker", extra={"for_tenant": tenant_id})
        return
    pipeline_call = {
        "flush_outbox": lambda rt: rt.pipeline.flush_outbox(),
        "reload_templates": lambda rt: rt.pipeline.reload_templates(),
        "logout": lambda rt: rt.logout(),
    }[what]
    if not runner.submit(pipeline_call):
        log.info("bot not ready; it will pick this up when it is", extra={"command": what})


@shared_task(name="bot.flush_outbox", ignore_result=True, acks_late=False)
def bot_flush_outbox(tenant_id: int) -> None:
    """On `tenant.<id>`: send what the send API queued (the rows are the durable outbox)."""
    _submit_to_bot(tenant_id, "flush_outbox")


@shared_task(name="bot.reload_templates", ignore_result=True, acks_late=False)
def bot_reload_templates(tenant_id: int) -> None:
    """On `tenant.<id>`: an operator changed the templates."""
    _submit_to_bot(tenant_id, "reload_templates")


@shared_task(name="bot.logout", ignore_result=True, acks_late=False)
def bot_logout(tenant_id: int) -> None:
    """On `tenant.<id>`: an operator or the tenant unlinks the WhatsApp device (workers/linking.py)."""
    _submit_to_bot(tenant_id, "logout")
