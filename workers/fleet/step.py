"""The fleet worker's bootstep: the agent supervises for as long as the worker runs.

On a warm shutdown (SIGTERM) the agent stops its children gracefully before
the worker exits; killed with SIGKILL, it leaves them running and the next
agent on this host adopts them.
"""

from __future__ import annotations

import os
from typing import Any

from celery import bootsteps
from django.conf import settings

from workers.fleet.agent import FleetAgent


class FleetAgentStep(bootsteps.StartStopStep):
    label = "FlowHQ fleet agent"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.agent: FleetAgent | None = None
        super().__init__(worker, **kwargs)

    def include_if(self, worker: Any) -> bool:
        return os.environ.get("FLOWHQ_ROLE") == "fleet"

    def create(self, worker: Any) -> None:
        self.agent = FleetAgent(settings.FLOWHQ_HOST, settings.FLEET_CAPACITY)

    def start(self, worker: Any) -> None:
        assert self.agent is not None
        self.agent.start()

    def stop(self, worker: Any) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    terminate = stop
