from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from flowhq.errors import FlowHQError
from tenants import services
from tenants.models import MessageLog, PortalMembership, ReplyTemplate, SetupRequest, Tenant, WhatsAppSession
from workers.admin_actions import lifecycle_actions


class ReplyTemplateInline(admin.TabularInline):
    model = ReplyTemplate
    extra = 0
    fields = ["match", "pattern", "body", "priority", "enabled"]


class MembershipInline(admin.TabularInline):
    model = PortalMembership
    extra = 0
    fields = ["email", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "slug", "status", "session_state", "worker_status", "worker_host", "created_at"]
    list_filter = ["status", "session__state", "worker__status"]
    search_fields = ["name", "slug", "members__email"]
    readonly_fields = ["status", "status_reason", "created_at", "updated_at"]
    list_select_related = ["session", "worker"]
    inlines = [ReplyTemplateInline, MembershipInline]
    actions = lifecycle_actions(lambda tenants: tenants.values_list("pk", flat=True))

    @admin.display(description="session", ordering="session__state")
    def session_state(self, tenant: Tenant) -> str:
        return tenant.session.state if hasattr(tenant, "session") else "-"

    @admin.display(description="worker", ordering="worker__status")
    def worker_status(self, tenant: Tenant) -> str:
        return tenant.worker.status if hasattr(tenant, "worker") else "-"

    @admin.display(description="host", ordering="worker__host")
    def worker_host(self, tenant: Tenant) -> str:
        return tenant.worker.host if hasattr(tenant, "worker") else "-"


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    list_display = ["tenant", "state", "phone", "wa_state", "qr_issued_at", "last_seen_at", "last_error"]
    list_filter = ["state"]
    search_fields = ["tenant__name", "phone"]
    readonly_fields = [f.name for f in WhatsAppSession._meta.fields]
    list_select_related = ["tenant"]


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(admin.ModelAdmin):
    list_display = ["id", "tenant", "match", "pattern", "priority", "enabled", "updated_at"]
    list_filter = ["match", "enabled"]
    search_fields = ["pattern", "body", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tenant", "direction", "chat", "status", "short_body", "latency_ms"]
    list_filter = ["direction", "status"]
    search_fields = ["message_id", "chat", "body"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in MessageLog._meta.fields]
    date_hierarchy = "created_at"

    @admin.display(description="body")
    def short_body(self, log: MessageLog) -> str:
        return log.body[:60]


@admin.register(PortalMembership)
class PortalMembershipAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "created_at"]
    search_fields = ["email", "tenant__name"]
    list_select_related = ["tenant"]


@admin.register(SetupRequest)
class SetupRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "business_name", "email", "phone", "state", "tenant"]
    list_filter = ["state"]
    search_fields = ["business_name", "email", "phone"]
    readonly_fields = ["state", "tenant", "decided_by", "decided_at", "created_at", "updated_at"]
    actions = ["approve", "reject"]

    @admin.action(description="Approve: create the tenant and make the user its member")
    def approve(self, request: HttpRequest, queryset: QuerySet[SetupRequest]) -> None:
        for setup_request in queryset.order_by("id"):
            try:
                decided = services.setup_request_approve(
                    request_id=setup_request.pk, decided_by=request.user.get_username()
                )
            except FlowHQError as exc:
                self.message_user(request, f"{setup_request}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Approved {decided.business_name} <{decided.email}>: tenant {decided.tenant}.",
                    messages.SUCCESS,
                )

    @admin.action(description="Reject")
    def reject(self, request: HttpRequest, queryset: QuerySet[SetupRequest]) -> None:
        for setup_request in queryset.order_by("id"):
            try:
                decided = services.setup_request_reject(
                    request_id=setup_request.pk, decided_by=request.user.get_username()
                )
            except FlowHQError as exc:
                self.message_user(request, f"{setup_request}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"Rejected {decided.business_name} <{decided.email}>.", messages.SUCCESS
                )
