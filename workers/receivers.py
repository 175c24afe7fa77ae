"""What tenant changes mean for orchestration: every tenant has a worker record, a tenant is not
deleted while its worker runs, and a running bot reloads when its templates change.

The tenant domain announces these (tenants/signals.py) without knowing who listens; a receiver
that raises fails the change, as the code it replaces did."""

from __future__ import annotations

from typing import Any

from flowhq.errors import Conflict
from tenants import signals as tenant_signals
from tenants.models import Tenant
from workers import commands
from workers.models import WorkerProcess
from workers.states import DesiredState, WorkerStatus


def on_tenant_created(sender: Any, tenant: Tenant, **_: Any) -> None:
    WorkerProcess.objects.create(tenant=tenant)


def on_tenant_deleting(sender: Any, tenant: Tenant, **_: Any) -> None:
    worker: WorkerProcess | None = getattr(tenant, "worker", None)
    if worker is not None and (
        worker.desired_state == DesiredState.RUNNING or worker.status != WorkerStatus.STOPPED
    ):
        raise Conflict("Stop the tenant's worker before deleting the tenant.")


def on_templates_changed(sender: Any, tenant_id: int, **_: Any) -> None:
    commands.templates_changed(tenant_id)


def connect() -> None:
    uid = "workers."
    tenant_signals.tenant_created.connect(on_tenant_created, dispatch_uid=uid + "tenant_created")
    tenant_signals.tenant_deleting.connect(on_tenant_deleting, dispatch_uid=uid + "tenant_deleting")
    tenant_signals.templates_changed.connect(on_templates_changed, dispatch_uid=uid + "templates_changed")
