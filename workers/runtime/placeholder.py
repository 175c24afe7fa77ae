"""A runtime that only heartbeats: for fleet tests and benchmarks, without a browser."""

from __future__ import annotations

from tenants.services import tenant_transition
from tenants.states import TenantStatus
from workers.runtime.base import Health, Runtime


class PlaceholderRuntime(Runtime):
    async def start(self) -> None:
        await self.db(tenant_transition, tenant_id=self.ctx.tenant_id, to=TenantStatus.RUNNING, reason="worker running", strict=False)

    async def stop(self) -> None:
        return None

    async def health(self) -> Health:
        return Health(ok=True, detail="placeholder")
