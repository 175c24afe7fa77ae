"""The tenant worker's bootstep: the runtime lives as long as the worker does.

It sits on the *worker* blueprint (the consumer blueprint restarts on every
broker reconnect, which would restart the browser), and it is not a task (a
never-ending task is redelivered by Redis after `visibility_timeout`).
On a warm shutdown Celery stops the consumer first; this step then lets the
tasks already running finish (they may need the bot) before the runtime stops.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import __version__ as celery_version
from celery import bootsteps
from celery.worker import state as worker_state
from django.conf import settings
from django.utils.module_loading import import_string

from workers.runtime.base import RuntimeContext
from workers.runtime.runner import RuntimeRunner

log = logging.getLogger(__name__)

RUNTIMES = {
    "placeholder": "workers.runtime.placeholder.PlaceholderRuntime",
    "whatsapp": "workers.bot.runtime.BotRuntime",
}


def runtime_factory() -> Any:
    try:
        return import_string(RUNTIMES[settings.BOT_RUNTIME])
    except KeyError:
        raise ValueError(f"BOT_RUNTIME={settings.BOT_RUNTIME!r} is not one of {sorted(RUNTIMES)}") from None


class TenantRuntimeStep(bootsteps.StartStopStep):
    label = "FlowHQ tenant runtime"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.runner: RuntimeRunner | None = None
        super().__init__(worker, **kwargs)

    def include_if(self, worker: Any) -> bool:
        return os.environ.get("FLOWHQ_ROLE") == "tenant"

    def create(self, worker: Any) -> None:
        ctx = RuntimeContext(
            tenant_id=int(os.environ["TENANT_ID"]),
            epoch=int(os.environ["FLOWHQ_EPOCH"]),
            host=os.environ.get("FLOWHQ_HOST", settings.FLOWHQ_HOST),
            node=worker.hostname,
            pid=os.getpid(),
        )
        self.runner = RuntimeRunner(ctx, runtime_factory())

    def start(self, worker: Any) -> None:
        assert self.runner is not None
        ctx = self.runner.ctx
        # The one line a tenant worker's start logs (no banner: `celery --quiet`, workers/fleet/processes.py).
        log.info("tenant worker started", extra={
            "node": ctx.node, "queue": f"tenant.{ctx.tenant_id}", "epoch": ctx.epoch, "pid": ctx.pid,
            "runtime": settings.BOT_RUNTIME, "celery": celery_version,
        })
        self.runner.start()

    def stop(self, worker: Any) -> None:
        self._wait_for_tasks(settings.WORKER_STOP_GRACE_MS / 1000)
        self._stop_runtime(worker)

    def terminate(self, worker: Any) -> None:
        self._stop_runtime(worker)

    def _stop_runtime(self, worker: Any) -> None:
        if self.runner is None:
            return
        self.runner.stop(timeout=settings.WORKER_STOP_GRACE_MS / 1000)
        if self.runner.exit_code:
            worker.exitcode = self.runner.exit_code
        self.runner = None

    @staticmethod
    def _wait_for_tasks(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while worker_state.active_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        if worker_state.active_requests:
            log.warning("stopping the runtime with tasks still running", extra={"tasks": len(worker_state.active_requests)})
