"""The Django admin of the tenant domain: the operator's cockpit.

The tenant changelist shows every bot's health at a glance (coloured badges,
heartbeat age, host) in a fixed number of queries. The tenant page adds the
live block — the QR code while the session waits for a scan, the session, the
worker and its latest transitions — refreshed in place from a small staff-only
fragment view, plus lifecycle buttons, the latest messages and the reply
templates. Writes go through the same services as the API, so the admin obeys
the same rules (template validation, reloading the running bot, one session
and worker per tenant, no deleting a running tenant).
"""

from __future__ import annotations

from collections.abc import Callable
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
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flowhq.admin_display import (
    ReadOnly,
    ReadOnlyAdmin,
    StyledAdmin,
    adopt,
    age,
    badge,
    heartbeat_age,
    latest_formset,
    session_badge,
    worker_badge,
)
from flowhq.errors import FlowHQError, ValidationFailed
from tenants import services
from tenants.models import MessageLog, PortalMembership, ReplyTemplate, SetupRequest, Tenant, WhatsAppSession
from tenants.states import SessionState
from tenants.templates import validate_template
from workers.admin_actions import OPERATIONS, lifecycle_actions, run_lifecycle
from workers.models import WorkerProcess, WorkerTransition
from workers.states import LIVE_STATUSES

QR_PREFIX = "data:image/png;base64,"
LATEST_MESSAGES = 20
LATEST_TRANSITIONS = 10
LIVE_REFRESH_MS = 3000
TEMPLATE_FIELDS = ("match", "pattern", "body", "priority", "enabled")
TENANT_FIELDS = ("name", "slug", "rate_limit_per_minute")

admin.site.site_header = "FlowHQ operations"
admin.site.site_title = "FlowHQ admin"
admin.site.index_title = "Tenants, workers and fleet"

# --- Reply templates: the API's rules, in forms -----------------------------------


class ReplyTemplateForm(forms.ModelForm):
    """Refuses what the API refuses (tenants.templates.validate_template), next to the field."""

    class Meta:
        model = ReplyTemplate
        fields = list(TEMPLATE_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk and not self.has_changed():
            return cleaned
        if any(name in self.errors for name in ("match", "pattern", "body")):
            return cleaned
        try:
            validate_template(
                match=cleaned.get("match") or "", pattern=cleaned.get("pattern") or "", body=cleaned.get("body") or ""
            )
        except ValidationFailed as exc:
            for field, problems in (exc.details or {"__all__": [exc.message]}).items():
                for problem in problems:
                    self.add_error(field if field in self.fields else None, problem)
        return cleaned


def save_template_formset(formset: BaseInlineFormSet) -> None:
    """Apply a tenant page's template edits through the services, which validate and tell the running bot."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = set(formset.deleted_forms)
    for form in formset.initial_forms:
        template = form.instance
        if template.pk is None:
            continue
        if form in deleted:
            services.template_delete(template=template)
            formset.deleted_objects.append(template)
        elif form.has_changed():
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in TEMPLATE_FIELDS}
            services.template_update(template=template, **changes)
            formset.changed_objects.append((template, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and form not in deleted:
            created = services.template_create(
                tenant=formset.instance, **{name: form.cleaned_data[name] for name in TEMPLATE_FIELDS}
            )
            form.instance = created
            formset.new_objects.append(created)


class ReplyTemplateInline(admin.TabularInline):
    model = ReplyTemplate
    form = ReplyTemplateForm
    extra = 0
    fields = list(TEMPLATE_FIELDS)


# --- Portal members ---------------------------------------------------------------


class MembershipForm(forms.ModelForm):
    class Meta:
        model = PortalMembership
        fields = ["email"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        other = (
            PortalMembership.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
            .select_related("tenant").first()
        )
        if other is not None:
            raise forms.ValidationError(f"{email} is already a member of {other.tenant}.")
        return email


class MembershipFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            email = data.get("email", "")
            if not email or data.get("DELETE"):
                continue
            if email.casefold() in seen:
                raise forms.ValidationError(f"{email} is listed twice.")
            seen.add(email.casefold())


def save_membership_formset(formset: BaseInlineFormSet) -> None:
    """New members are linked by the membership service (one tenant per email, case-insensitive)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = set(formset.deleted_forms)
    for form in formset.initial_forms:
        if form.instance.pk is None:
            continue
        if form in deleted:
            form.instance.delete()
            formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            form.save()
            formset.changed_objects.append((form.instance, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and form not in deleted:
            membership, _ = services.membership_add(tenant=formset.instance, email=form.cleaned_data["email"])
            form.instance = membership
            formset.new_objects.append(membership)


class MembershipInline(admin.TabularInline):
    model = PortalMembership
    form = MembershipForm
    formset = MembershipFormSet
    extra = 0
    fields = ["email", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name_plural = "portal members"


# --- Latest messages, read-only ------------------------------------------------------


class MessageLogInline(ReadOnly, admin.TabularInline):
    model = MessageLog
    formset = latest_formset(LATEST_MESSAGES)
    fields = ["created_at", "direction", "chat", "short_body", "status", "latency_ms", "error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"latest {LATEST_MESSAGES} messages"

    @admin.display(description="body")
    def short_body(self, log: MessageLog) -> str:
        return log.body[:80]


# --- Tenants -------------------------------------------------------------------------


class StaleFilter(admin.SimpleListFilter):
    title = "heartbeat"
    parameter_name = "heartbeat"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("stale", "Stale (missed its deadline)"), ("fresh", "Fresh")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        stale = Q(worker__status__in=LIVE_STATUSES, worker__stale_after__lt=Now())
        if self.value() == "stale":
            return queryset.filter(stale)
        if self.value() == "fresh":
            return queryset.filter(worker__status__in=LIVE_STATUSES).exclude(stale)
        return queryset


def titled(title: str, base: type[admin.FieldListFilter] = admin.ChoicesFieldListFilter) -> type[admin.FieldListFilter]:
    """A field filter with its own title (several related fields are all called "status")."""

    class Titled(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = list(TENANT_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk and "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Leave empty to derive it from the name."


@admin.register(Tenant)
class TenantAdmin(StyledAdmin):
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

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in TENANT_FIELDS}
            services.tenant_update(tenant=obj, **changes)
        else:
            data = form.cleaned_data
            created = services.tenant_create(
                name=data["name"], slug=data.get("slug") or "", rate_limit_per_minute=data.get("rate_limit_per_minute")
            )
            adopt(obj, created)

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: BaseInlineFormSet,
                     change: bool) -> None:
        if formset.model is ReplyTemplate:
            save_template_formset(formset)
        elif formset.model is PortalMembership:
            save_membership_formset(formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        services.tenant_delete(tenant=obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except FlowHQError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[object_id]))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list, dict, set, list]:
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


# --- The other tenant-domain models ------------------------------------------------------


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "state_badge", "phone", "wa_state", "qr_issued_at", "last_seen_at", "last_error"]
    list_filter = ["state"]
    search_fields = ["tenant__name", "phone"]
    fields = ["tenant", "state_badge", "qr_image", "qr_issued_at", "qr_count", "phone", "wa_state",
              "last_seen_at", "last_error", "updated_at"]
    readonly_fields = fields
    list_select_related = ["tenant"]

    @admin.display(description="state", ordering="state")
    def state_badge(self, session: WhatsAppSession) -> SafeString:
        return session_badge(session)

    @admin.display(description="QR code")
    def qr_image(self, session: WhatsAppSession) -> SafeString:
        if session.state == SessionState.QR_READY and session.qr.startswith(QR_PREFIX):
            return format_html('<img class="fhq-qr-img" src="{}" alt="QR code" width="200" height="200">', session.qr)
        return format_html("-")


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(admin.ModelAdmin):
    form = ReplyTemplateForm
    list_display = ["id", "tenant", "match", "pattern", "short_body", "priority", "enabled", "updated_at"]
    list_filter = ["match", "enabled", "tenant"]
    search_fields = ["pattern", "body", "tenant__name"]
    list_select_related = ["tenant"]
    fields = ["tenant", *TEMPLATE_FIELDS]

    @admin.display(description="reply")
    def short_body(self, template: ReplyTemplate) -> str:
        return template.body[:60]

    def get_readonly_fields(self, request: HttpRequest, obj: ReplyTemplate | None = None) -> list[str]:
        return ["tenant"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: ReplyTemplate, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in TEMPLATE_FIELDS}
            if changes:
                services.template_update(template=obj, **changes)
        else:
            created = services.template_create(
                tenant=form.cleaned_data["tenant"], **{name: form.cleaned_data[name] for name in TEMPLATE_FIELDS}
            )
            adopt(obj, created)

    def delete_model(self, request: HttpRequest, obj: ReplyTemplate) -> None:
        services.template_delete(template=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ReplyTemplate]) -> None:
        for template in queryset:
            services.template_delete(template=template)


@admin.register(MessageLog)
class MessageLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "direction", "chat", "status", "short_body", "latency_ms"]
    list_filter = ["tenant", "direction", "status"]
    search_fields = ["message_id", "chat", "body", "in_reply_to"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # a big log: no second COUNT(*) per page

    @admin.display(description="body")
    def short_body(self, log: MessageLog) -> str:
        return log.body[:60]


@admin.register(PortalMembership)
class PortalMembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ["email", "tenant", "created_at"]
    search_fields = ["email", "tenant__name"]
    list_select_related = ["tenant"]
    fields = ["email", "tenant"]


@admin.register(SetupRequest)
class SetupRequestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "business_name", "email", "phone", "state", "tenant"]
    list_filter = ["state"]
    search_fields = ["business_name", "email", "phone"]
    list_select_related = ["tenant"]
    readonly_fields = ["state", "tenant", "decided_by", "decided_at", "created_at", "updated_at"]
    actions = ["approve", "reject"]

    @admin.action(description="Approve: create the tenant and make the user its member")
    def approve(self, request: HttpRequest, queryset: QuerySet[SetupRequest]) -> None:
        self._decide(request, queryset, services.setup_request_approve,
                     lambda done: f"Approved {done.business_name} <{done.email}>: tenant {done.tenant}.")

    @admin.action(description="Reject")
    def reject(self, request: HttpRequest, queryset: QuerySet[SetupRequest]) -> None:
        self._decide(request, queryset, services.setup_request_reject,
                     lambda done: f"Rejected {done.business_name} <{done.email}>.")

    def _decide(self, request: HttpRequest, queryset: QuerySet[SetupRequest],
                service: Callable[..., SetupRequest], report: Callable[[SetupRequest], str]) -> None:
        """One decision per request, each reported; a request already decided is a message, not an error."""
        for setup_request in queryset.order_by("id"):
            try:
                decided = service(request_id=setup_request.pk, decided_by=request.user.get_username())
            except FlowHQError as exc:
                self.message_user(request, f"{setup_request}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, report(decided), messages.SUCCESS)
