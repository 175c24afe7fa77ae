"""Installs the webhooks' periodic tasks in django-celery-beat when beat starts (as workers.periodic)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

SWEEP_NAME = "flowhq: webhook deliveries due"
PRUNE_NAME = "flowhq: prune old webhook deliveries"


def install_periodic_tasks() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = max(1, round(settings.WEBHOOK_SWEEP_INTERVAL_MS / 1000))
    sweep_schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name=SWEEP_NAME, defaults={
        "task": "webhooks.sweep", "interval": sweep_schedule, "queue": "webhooks", "enabled": True,
        "expire_seconds": every * 2,
        "description": "Queues webhook deliveries whose time came (retries, lost tasks, killed workers).",
    })
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.update_or_create(name=PRUNE_NAME, defaults={
        "task": "webhooks.prune", "interval": hourly, "queue": "webhooks", "enabled": True,
        "expire_seconds": 3600, "description": "Deletes webhook events and deliveries older than WEBHOOK_KEEP_DAYS.",
    })
    log.info("webhook periodic tasks installed", extra={"sweep_every_s": every})


def on_beat_init(sender: Any = None, **kwargs: Any) -> None:
    install_periodic_tasks()
