"""Waiting on what real processes write to the database: an agent registered, a worker in a state."""

from __future__ import annotations

from tests.harness import wait_for
from workers.models import FleetHost, WorkerProcess
from workers.states import WorkerStatus


def worker(tenant_id: int) -> WorkerProcess:
    return WorkerProcess.objects.get(tenant_id=tenant_id)


def wait_host(host: str) -> None:
    """Until the agent of `host` has registered itself."""
    wait_for(lambda: FleetHost.objects.filter(name=host, pid__isnull=False).exists(), 30, what=f"agent {host}")


def wait_running(tenant_id: int, *, not_pid: int | None = None, timeout: float = 40) -> WorkerProcess:
    def check() -> WorkerProcess | None:
        w = worker(tenant_id)
        return w if w.status == WorkerStatus.RUNNING and w.pid and w.pid != not_pid else None

    return wait_for(check, timeout, what=f"tenant {tenant_id} RUNNING")


def wait_status(tenant_id: int, status: str, timeout: float = 40) -> WorkerProcess:
    return wait_for(lambda: worker(tenant_id).status == status and worker(tenant_id), timeout,
                    what=f"tenant {tenant_id} {status}")
