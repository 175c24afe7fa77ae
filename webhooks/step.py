"""The bootstep that runs the relay in every Celery worker that consumes the `webhooks` queue."""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from webhooks.dispatch import QUEUE
from webhooks.relay import Relay


class WebhookRelayStep(bootsteps.StartStopStep):
    label = "FlowHQ webhook relay"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.relay: Relay | None = None
        super().__init__(worker, **kwargs)

    def include_if(self, worker: Any) -> bool:
        return QUEUE in (worker.app.amqp.queues.consume_from or {})

    def start(self, worker: Any) -> None:
        self.relay = Relay()
        self.relay.start()

    def stop(self, parent: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None

    terminate = stop
