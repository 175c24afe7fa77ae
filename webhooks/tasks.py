"""Celery tasks of the `webhooks` queue (sent there by webhooks.dispatch and the periodic entry): thin,
each calls one service."""

from __future__ import annotations

import math
from datetime import datetime

from celery import shared_task
from django.conf import settings

from webhooks import services
from webhooks.dispatch import DELIVER


# Whole seconds (Celery's type): three attempts' worth of timeout, rounded up, and 30 s more.
@shared_task(name=DELIVER, acks_late=True, ignore_result=True,
             time_limit=math.ceil(settings.WEBHOOK_TIMEOUT_MS * 3 / 1000) + 30)
def deliver(delivery_id: int, token: str) -> None:
    services.delivery_attempt(delivery_id=delivery_id, token=datetime.fromisoformat(token))


@shared_task(name="webhooks.prune", ignore_result=True, send_events=False)  # periodic: no task events
def prune() -> int:
    return services.deliveries_prune()
