"""Django admin actions for worker lifecycle, shared by the tenant and worker pages.

They call the same services as the API, one tenant at a time, and report each
outcome (or refusal) as an admin message rather than failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from flowhq.errors import FlowHQError
from workers import lifecycle

Service = Callable[..., object]


def _run(modeladmin: admin.ModelAdmin, request: HttpRequest, tenant_ids: Iterable[int], service: Service,
         verb: str) -> None:
    done, failed = [], []
    for tenant_id in tenant_ids:
        try:
            service(tenant_id=tenant_id, reason=f"{verb} requested by {request.user} (admin)")
            done.append(str(tenant_id))
        except FlowHQError as exc:
            failed.append(f"#{tenant_id}: {exc.message}")
    if done:
        modeladmin.message_user(request, f"{verb.capitalize()} requested for tenant(s) {', '.join(done)}.",
                                messages.SUCCESS)
    for problem in failed:
        modeladmin.message_user(request, f"Could not {verb} {problem}", messages.ERROR)


def lifecycle_actions(tenant_id_of: Callable[[QuerySet], Iterable[int]]) -> list[Callable[..., None]]:
    """Admin actions start/stop/restart/force-restart for a changelist of tenants or workers."""

    def make(service: Service, verb: str, description: str) -> Callable[..., None]:
        @admin.action(description=description)
        def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
            _run(modeladmin, request, tenant_id_of(queryset), service, verb)

        action.__name__ = f"worker_{verb.replace('-', '_')}"
        return action

    return [
        make(lifecycle.worker_start, "start", "Start the worker"),
        make(lifecycle.worker_stop, "stop", "Stop the worker"),
        make(lifecycle.worker_restart, "restart", "Restart the worker"),
        make(lifecycle.worker_force_restart, "force-restart", "Force-restart the worker (kill, wipe runtime state)"),
    ]
