"""The Django admin of orchestration: worker processes, their transitions, fleet hosts,
profile backups, and the tenant page (workers/admin_tenant.py), which shows the worker.

Workers and transitions are written by the lifecycle services, the agents and
the sweep, never by hand: the pages are read-only apart from the lifecycle
actions. A fleet host's capacity and draining flag are the operator's knobs.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Model, Q, QuerySet
from django.db.models.functions import Now
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django_stubs_ext import WithAnnotations

from flowhq.admin_display import (
    ReadOnly,
    ReadOnlyAdmin,
    StyledAdmin,
    age,
    badge,
    latest_formset,
)
from workers import admin_tenant  # noqa: F401 - registers the tenant page, which shows the worker
from workers.admin_actions import lifecycle_actions
from workers.admin_display import heartbeat_age, worker_badge
from workers.models import FleetHost, ProfileBackup, WorkerProcess, WorkerTransition
from workers.placement import Load, hosts_with_load

LATEST_TRANSITIONS = 50


class TransitionInline(ReadOnly, admin.TabularInline[WorkerTransition, WorkerProcess]):
    model = WorkerTransition
    formset = latest_formset(LATEST_TRANSITIONS)
    extra = 0
    max_num = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "from_status", "to_status", "reason", "host", "epoch")
    verbose_name_plural = f"latest {LATEST_TRANSITIONS} transitions"


@admin.register(WorkerProcess)
class WorkerProcessAdmin(StyledAdmin[WorkerProcess]):
    list_display = [
        "tenant", "status_badge", "desired_state", "heartbeat", "restart_count", "host", "pid", "node",
        "last_error",
    ]
    list_filter = ["status", "desired_state", "host"]
    search_fields = ["tenant__name", "node", "host", "=pid"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in WorkerProcess._meta.fields]
    inlines = [TransitionInline]
    actions = lifecycle_actions(lambda workers: workers.values_list("tenant_id", flat=True))

    @admin.display(description="status", ordering="status")
    def status_badge(self, worker: WorkerProcess) -> SafeString:
        return worker_badge(worker)

    @admin.display(description="heartbeat", ordering="heartbeat_at")
    def heartbeat(self, worker: WorkerProcess) -> SafeString:
        return heartbeat_age(worker)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # one per tenant, created with it

    def has_delete_permission(self, request: HttpRequest, obj: WorkerProcess | None = None) -> bool:
        return False  # goes with its tenant


class ListedHost(Load):
    is_live: bool


@admin.register(FleetHost)
class FleetHostAdmin(StyledAdmin[FleetHost]):
    list_display = ["name", "liveness", "heartbeat", "capacity", "assigned", "free", "draining", "pid", "started_at"]
    list_filter = ["draining"]
    search_fields = ["name"]
    fields = ["name", "capacity", "draining", "pid", "started_at", "heartbeat_at", "stale_after"]
    readonly_fields = ["name", "pid", "started_at", "heartbeat_at", "stale_after"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WithAnnotations[FleetHost, ListedHost]]:
        # Liveness by the database clock, like placement judges it.
        return hosts_with_load().annotate(
            is_live=ExpressionWrapper(Q(stale_after__gt=Now()), output_field=BooleanField())
        )

    @admin.display(description="agent", ordering="is_live")
    def liveness(self, host: WithAnnotations[FleetHost, ListedHost]) -> SafeString:
        if host.is_live:
            return badge("LIVE", "live")
        return badge("STALE", "stale", f"no heartbeat since {age(host.heartbeat_at)}")

    @admin.display(description="heartbeat", ordering="heartbeat_at")
    def heartbeat(self, host: FleetHost) -> str:
        return age(host.heartbeat_at)

    @admin.display(description="assigned", ordering="assigned")
    def assigned(self, host: WithAnnotations[FleetHost, Load]) -> int:
        return host.assigned

    @admin.display(description="free", ordering="free")
    def free(self, host: WithAnnotations[FleetHost, Load]) -> int:
        return host.free

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents register themselves


@admin.register(WorkerTransition)
class WorkerTransitionAdmin(ReadOnlyAdmin[WorkerTransition]):
    list_display = ["created_at", "worker", "from_status", "to_status", "reason", "host", "epoch"]
    list_filter = ["to_status", "host"]
    search_fields = ["reason", "worker__tenant__name"]
    list_select_related = ["worker"]
    date_hierarchy = "created_at"


@admin.register(ProfileBackup)
class ProfileBackupAdmin(ReadOnlyAdmin[ProfileBackup]):
    """Written by workers; an operator may delete one (the next start then uses the host's own profile)."""

    list_display = ["tenant", "kilobytes", "host", "epoch", "saved_at"]
    list_filter = ["host"]
    search_fields = ["tenant__name", "=tenant__id"]
    list_select_related = ["tenant"]
    fields = readonly_fields = ("tenant", "kilobytes", "digest", "host", "epoch", "saved_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProfileBackup]:
        return super().get_queryset(request).defer("data")  # megabytes each; never shown

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # ModelAdmin's rule (the user's delete permission), which ReadOnly turns off.
        backup = obj if isinstance(obj, ProfileBackup) else None
        return super(ReadOnly, self).has_delete_permission(request, backup)

    @admin.display(description="size (KB)", ordering="size")
    def kilobytes(self, backup: ProfileBackup) -> str:
        return f"{backup.size / 1024:,.0f}"
