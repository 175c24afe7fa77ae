"""The tenant changelist and page: health at a glance, the live block, lifecycle buttons.

It lives here, not in tenants/admin/, because it shows and drives the tenant's worker: the
tenant domain knows nothing of orchestration (docs/architecture.md, "Layers")."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.functions import Now
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from flowhq.admin_display import StyledAdmin, adopt, age, badge
from flowhq.errors import FlowHQError
from tenants import services
from tenants.admin.display import QR_PREFIX, session_badge
from tenants.admin.forms import (
    POLICY_FIELDS,
    TENANT_FIELDS,
    TenantForm,
    save_membership_formset,
    save_template_formset,
)
from tenants.admin.inlines import MembershipInline, MessageLogInline, ReplyTemplateInline
from tenants.models import PortalMembership, ReplyTemplate, Tenant, WhatsAppSession
from tenants.states import SessionState
from workers.admin_actions import OPERATIONS, lifecycle_actions, run_lifecycle
from workers.admin_display import heartbeat_age, worker_badge
from workers.models import WorkerProcess, WorkerTransition
from workers.states import LIVE_STATUSES

LATEST_TRANSITIONS = 10
LIVE_REFRESH_MS = 3000


class StaleFilter(admin.SimpleListFilter):
    title = "heartbeat"
    parameter_name = "heartbeat"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("stale", "Stale (missed its deadline)"), ("fresh", "Fresh")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> QuerySet[Tenant]:
        stale = Q(worker__status__in=LIVE_STATUSES, worker__stale_after__lt=Now())
        if self.value() == "stale":
            return queryset.filter(stale)
        if self.value() == "fresh":
            return queryset.filter(worker__status__in=LIVE_STATUSES).exclude(stale)
        return queryset


def titled(title: str, base: type[admin.FieldListFilter] = admin.ChoicesFieldListFilter) -> type[admin.FieldListFilter]:
    """A field filter with its own title (several related fields are all called "status")."""

    # A base chosen at run time, which mypy cannot follow (it takes only static bases).
    class Titled(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled



@admin.register(Tenant)
class TenantAdmin(StyledAdmin[Tenant]):
    form = TenantForm
    list_display = [
        "id", "name", "status_badge", "session_state", "worker_state", "heartbeat", "worker_host", "created_at",
    ]
    list_display_links = ["id", "name"]
    list_filter = [
        "status",
        ("session__state", titled("session")),
        ("worker__status", titled("worker")),
        ("worker__desired_state", titled("worker wanted")),
        StaleFilter,
        ("worker__host", titled("host", admin.AllValuesFieldListFilter)),
    ]
    search_fields = ["=id", "name", "slug", "members__email", "session__phone", "worker__host"]
    list_select_related = ["session", "worker"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": list(TENANT_FIELDS)}),
        ("Message policy", {
            "fields": list(POLICY_FIELDS),
            "description": "Status posts, channel posts and reactions are never answered; a LID sender is "
                           "answered as their phone number; a message deleted while it waits is not answered.",
        }),
        ("Status", {"fields": ["status_badge", "status_reason", "created_at", "updated_at"]}),
    ]
    readonly_fields = ["status_badge", "status_reason", "created_at", "updated_at"]
    inlines = [ReplyTemplateInline, MembershipInline, MessageLogInline]
    actions = lifecycle_actions(lambda tenants: tenants.values_list("pk", flat=True))

    # -- changelist columns

    @admin.display(description="status", ordering="status")
    def status_badge(self, tenant: Tenant) -> SafeString:
        return badge(tenant.status, tenant.get_status_display(), tenant.status_reason)

    @admin.display(description="session", ordering="session__state")
    def session_state(self, tenant: Tenant) -> SafeString:
        return session_badge(getattr(tenant, "session", None))

    @admin.display(description="worker", ordering="worker__status")
    def worker_state(self, tenant: Tenant) -> SafeString:
        return worker_badge(getattr(tenant, "worker", None))

    @admin.display(description="heartbeat", ordering="worker__heartbeat_at")
    def heartbeat(self, tenant: Tenant) -> SafeString:
        return heartbeat_age(getattr(tenant, "worker", None))

    @admin.display(description="host", ordering="worker__host")
    def worker_host(self, tenant: Tenant) -> str:
        worker = getattr(tenant, "worker", None)
        return (worker.host if worker else "") or "-"

    # -- writes go through the services

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm[Tenant], change: bool) -> None:
        if change:
            editable = {*TENANT_FIELDS, *POLICY_FIELDS}
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in editable}
            services.tenant_update(tenant=obj, **changes)
        else:
            data = form.cleaned_data
            created = services.tenant_create(
                name=data["name"], slug=data.get("slug") or "", rate_limit_per_minute=data.get("rate_limit_per_minute"),
                reply_in_groups=data.get("reply_in_groups", False), reply_to_media=data.get("reply_to_media", True),
            )
            adopt(obj, created)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm[Tenant],
                     formset: BaseInlineFormSet[Any, Tenant, Any], change: bool) -> None:
        if formset.model is ReplyTemplate:
            save_template_formset(formset)
        elif formset.model is PortalMembership:
            save_membership_formset(formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        services.tenant_delete(tenant=obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except FlowHQError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[object_id]))

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        # The session, worker and logs are read-only on their own pages, but they go with their tenant.
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time: each must be stopped first
        return actions

    # -- the tenant page: live block, lifecycle buttons

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/live/", view(self.live_view), name="tenants_tenant_live"),
            path("<path:object_id>/worker/<str:verb>/", view(self.lifecycle_view), name="tenants_tenant_lifecycle"),
            *super().get_urls(),
        ]

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Tenant | None = None) -> HttpResponse:
        if obj is not None and obj.pk:
            context.update(live_context(obj.pk))
            context["live_url"] = reverse("admin:tenants_tenant_live", args=[obj.pk])
            context["live_refresh_ms"] = LIVE_REFRESH_MS
            context["lifecycle_ops"] = list(OPERATIONS.values())
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tenant_or_404(self, request: HttpRequest, object_id: str) -> Tenant:
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404("No such tenant.")
        return tenant

    def live_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The live block of the tenant page as an HTML fragment; the page polls it."""
        tenant = self._tenant_or_404(request, object_id)
        if not self.has_view_permission(request, tenant):
            raise PermissionDenied
        return TemplateResponse(request, "admin/tenants/tenant/live.html", live_context(tenant.pk))

    def lifecycle_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        """A lifecycle button of the tenant page (POST, CSRF-protected by admin_view)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if verb not in OPERATIONS:
            raise Http404("No such operation.")
        tenant = self._tenant_or_404(request, object_id)
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        run_lifecycle(self, request, [tenant.pk], verb)
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))


def live_context(tenant_id: int) -> dict[str, Any]:
    """What the live block shows: the session (and its QR), the worker and its latest transitions."""
    tenant = Tenant.objects.select_related("session", "worker").get(pk=tenant_id)
    session: WhatsAppSession | None = getattr(tenant, "session", None)
    worker: WorkerProcess | None = getattr(tenant, "worker", None)
    show_qr = session is not None and session.state == SessionState.QR_READY and session.qr.startswith(QR_PREFIX)
    transitions = (
        WorkerTransition.objects.filter(worker=worker)[:LATEST_TRANSITIONS] if worker is not None else []
    )
    now = timezone.now()
    return {
        "tenant": tenant,
        "tenant_badge": badge(tenant.status, tenant.get_status_display(), tenant.status_reason),
        "session": session,
        "session_badge": session_badge(session),
        "show_qr": show_qr,
        "qr_age": age(session.qr_issued_at, now) if session is not None else "-",
        "last_seen_age": age(session.last_seen_at, now) if session is not None else "-",
        "worker": worker,
        "worker_badge": worker_badge(worker),
        "heartbeat": heartbeat_age(worker),
        "started_age": age(worker.started_at, now) if worker is not None else "-",
        "transitions": transitions,
        "messages_url": reverse("admin:tenants_messagelog_changelist") + f"?tenant__id__exact={tenant_id}",
        "now": now,
    }
