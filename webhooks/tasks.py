"""Celery tasks of the `webhooks` queue (sent there by webhooks.dispatch and the periodic entries): thin,
each calls one service."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings

from webhooks import services
from webhooks.dispatch import DELIVER


@shared_task(name=DELIVER, acks_late=True, ignore_result=True,
             time_limit=settings.WEBHOOK_TIMEOUT_MS / 1000 * 3 + 30)
def deliver(delivery_id: int, token: str) -> None:
    services.delivery_attempt(delivery_id=delivery_id, token=datetime.fromisoformat(token))


@shared_task(name="webhooks.sweep", ignore_result=True, send_events=False)  # periodic: no task events
def sweep() -> int:
    return services.deliveries_due_enqueue()


@shared_task(name="webhooks.prune", ignore_result=True, send_events=False)  # periodic: no task events
def prune() -> int:
    return services.deliveries_prune()
