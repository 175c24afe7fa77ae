"""The Celery app: `celery -A flowhq ...` finds it as `flowhq.celery:app`."""

from __future__ import annotations

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from celery.utils.serialization import jsonify, strtobool
from celery.worker.control import inspect_command
from kombu.utils.encoding import safe_repr

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowhq.settings")

app = Celery("flowhq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each is included only in its role's process (FLOWHQ_ROLE=tenant / fleet).
app.steps["worker"].add("workers.runtime.step:TenantRuntimeStep")
app.steps["worker"].add("workers.fleet.step:FleetAgentStep")
# Only in workers that consume the `webhooks` queue.
app.steps["worker"].add("webhooks.step:WebhookRelayStep")


@setup_logging.connect
def _use_django_logging(**_: object) -> None:
    # One log format for every process: Celery would otherwise install its own.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@inspect_command(signature="[include_defaults=False]", args=[("with_defaults", strtobool)])
def conf(state: Any, with_defaults: bool = False, **kwargs: Any) -> Any:
    """`celery inspect conf` and Flower's worker page, with no password in them (flowhq.censor).

    Registered under Celery's own name, so it replaces the built-in command in every worker.
    """
    from flowhq.censor import censored_conf

    return jsonify(censored_conf(state.app.conf.table(with_defaults=with_defaults)),
                   keyfilter=lambda key: isinstance(key, str) and not key.startswith("__"),
                   unknown_type_filter=safe_repr)
