from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from workers.admin_actions import lifecycle_actions
from workers.models import FleetHost, WorkerProcess, WorkerTransition


class TransitionInline(admin.TabularInline):
    model = WorkerTransition
    extra = 0
    can_delete = False
    fields = ["created_at", "from_status", "to_status", "reason", "host", "epoch"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def heartbeat_age(worker: WorkerProcess) -> str:
    if worker.heartbeat_at is None:
        return "-"
    seconds = (timezone.now() - worker.heartbeat_at).total_seconds()
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


@admin.register(WorkerProcess)
class WorkerProcessAdmin(admin.ModelAdmin):
    list_display = [
        "tenant", "status", "desired_state", "host", "pid", "heartbeat", "restart_count", "last_error",
    ]
    list_filter = ["status", "desired_state", "host"]
    search_fields = ["tenant__name", "node", "host"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in WorkerProcess._meta.fields]
    inlines = [TransitionInline]
    actions = lifecycle_actions(lambda workers: workers.values_list("tenant_id", flat=True))

    @admin.display(description="heartbeat", ordering="heartbeat_at")
    def heartbeat(self, worker: WorkerProcess) -> str:
        return heartbeat_age(worker)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one per tenant, created with it


@admin.register(FleetHost)
class FleetHostAdmin(admin.ModelAdmin):
    list_display = ["name", "capacity", "pid", "heartbeat_at", "stale_after", "draining"]
    readonly_fields = ["name", "pid", "started_at", "heartbeat_at", "stale_after"]


@admin.register(WorkerTransition)
class WorkerTransitionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "worker", "from_status", "to_status", "reason", "host", "epoch"]
    list_filter = ["to_status", "host"]
    search_fields = ["reason", "worker__tenant__name"]
    list_select_related = ["worker__tenant"]
    readonly_fields = [f.name for f in WorkerTransition._meta.fields]
