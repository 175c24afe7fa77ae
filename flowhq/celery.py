"""The Celery app: `celery -A flowhq ...` finds it as `flowhq.celery:app`."""

from __future__ import annotations

import logging.config
import os
import warnings
from typing import Any

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import beat_init, setup_logging
from celery.utils.serialization import jsonify, strtobool
from celery.worker.control import inspect_command
from kombu.utils.encoding import safe_repr

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowhq.settings")
# Celery names its processes with setproctitle, which by default writes the title over the
# environment block: the fleet agent finds its workers' leftover Chromium, and exec'ed workers
# after a restart, by /proc/<pid>/environ. Keep it; the title is then as long as the command line.
os.environ.setdefault("SPT_NOENV", "1")

app = Celery("flowhq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each is included only in its role's process (FLOWHQ_ROLE=tenant / fleet).
app.steps["worker"].add("workers.runtime.step:TenantRuntimeStep")
app.steps["worker"].add("workers.fleet.step:FleetAgentStep")
# Only in workers that consume the `webhooks` queue.
app.steps["worker"].add("webhooks.step:WebhookRelayStep")


# Celery's start-up lines a tenant worker does not repeat: its bootstep logs one line instead
# (workers/runtime/step.py), and with a thousand tenants the rest would be most of the log.
TENANT_QUIET_LOGGERS = ("celery.apps.worker", "celery.worker.consumer.connection")


def tenant_role() -> bool:
    """Read when used, not at import: a worker forked by the zygote (workers/fleet/zygote.py)
    becomes a tenant worker after this module was imported."""
    return os.environ.get("FLOWHQ_ROLE") == "tenant"


def quiet_tenant_warnings() -> None:
    # Celery warns about running as root in every worker it starts; the host's fleet agent
    # (fleet@<host>, the same user) has warned once already.
    if tenant_role():
        warnings.filterwarnings("ignore", category=SecurityWarning)


quiet_tenant_warnings()


@setup_logging.connect
def _on_setup_logging(**_: object) -> None:
    use_django_logging()


def use_django_logging() -> None:
    """One log format for every process: Celery would otherwise install its own."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if tenant_role():
        for name in TENANT_QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


@beat_init.connect
def _no_sent_events_from_beat(sender: Any = None, **_: object) -> None:
    # Beat publishes only the periodic tasks (fleet.sweep, webhooks.prune), which keep
    # no task events (their `send_events=False`): their "task-sent" would flood Flower just as much.
    app.conf.task_send_sent_event = False


@inspect_command(signature="[include_defaults=False]", args=[("with_defaults", strtobool)])
def conf(state: Any, with_defaults: bool = False, **kwargs: Any) -> Any:
    """`celery inspect conf` and Flower's worker page, with no password in them (flowhq.censor).

    Registered under Celery's own name, so it replaces the built-in command in every worker.
    """
    from flowhq.censor import censored_conf

    return jsonify(censored_conf(state.app.conf.table(with_defaults=with_defaults)),
                   keyfilter=lambda key: isinstance(key, str) and not key.startswith("__"),
                   unknown_type_filter=safe_repr)
