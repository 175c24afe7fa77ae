"""The Celery app: `celery -A flowhq ...` finds it as `flowhq.celery:app`."""

from __future__ import annotations

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowhq.settings")

app = Celery("flowhq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each is included only in its role's process (FLOWHQ_ROLE=tenant / fleet).
app.steps["worker"].add("workers.runtime.step:TenantRuntimeStep")
app.steps["worker"].add("workers.fleet.step:FleetAgentStep")


@setup_logging.connect
def _use_django_logging(**_: object) -> None:
    # One log format for every process: Celery would otherwise install its own.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
