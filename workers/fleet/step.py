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
        self.exporter: Any = None
        super().__init__(worker, **kwargs)

    def include_if(self, worker: Any) -> bool:
        return os.environ.get("FLOWHQ_ROLE") == "fleet"

    def create(self, worker: Any) -> None:
        self.agent = FleetAgent(settings.FLOWHQ_HOST, settings.FLEET_CAPACITY)

    def start(self, worker: Any) -> None:
        assert self.agent is not None
        self.agent.start()
        # Imported here: every Celery worker loads this module, only an agent serves metrics.
        from workers.fleet import exporter

        self.exporter = exporter.serve(self.agent, port=settings.FLEET_METRICS_PORT,
                                       addr=settings.FLEET_METRICS_BIND)

    def stop(self, parent: Any) -> None:
        if self.exporter is not None:
            self.exporter.shutdown()
            self.exporter.server_close()
            self.exporter = None
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    terminate = stop
