"""Installs the webhooks' periodic task in django-celery-beat when beat starts (as workers.periodic).

Due deliveries are queued by the relay in each `webhooks` worker (webhooks.relay), not by beat."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# Beat's sweep of due deliveries before the relay took its job: removed where it was installed.
RETIRED_SWEEP_NAME = "flowhq: webhook deliveries due"
PRUNE_NAME = "flowhq: prune old webhook deliveries"


def install_periodic_tasks() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    PeriodicTask.objects.filter(name=RETIRED_SWEEP_NAME).delete()
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.update_or_create(name=PRUNE_NAME, defaults={
        "task": "webhooks.prune", "interval": hourly, "queue": "webhooks", "enabled": True,
        "expire_seconds": 3600, "description": "Deletes webhook events and deliveries older than WEBHOOK_KEEP_DAYS.",
    })
    log.info("webhook periodic tasks installed")


def on_beat_init(sender: Any = None, **kwargs: Any) -> None:
    install_periodic_tasks()
