"""Installs the periodic tasks in django-celery-beat when beat starts, never by hand."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

SWEEP_NAME = "flowhq: stale-worker sweep"


def sweep_every_seconds() -> int:
    """One sweep per heartbeat interval, at least once a second."""
    return max(1, round(settings.HEARTBEAT_INTERVAL_MS / 1000))


def install_periodic_tasks() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = sweep_every_seconds()
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=SWEEP_NAME,
        defaults={
            "task": "fleet.sweep",
            "interval": schedule,
            "queue": "control",
            "enabled": True,
            # A sweep nobody ran in time is useless: the next one is coming.
            "expire_seconds": every * 2,
            "description": "Claims workers whose heartbeat deadline passed and moves tenants off dead hosts.",
        },
    )
    log.info("periodic tasks installed", extra={"sweep_every_s": every})


def on_beat_init(sender: Any = None, **kwargs: Any) -> None:
    install_periodic_tasks()
