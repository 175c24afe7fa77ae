"""The other tenant-domain models: sessions and message logs (read-only), templates, chat pauses,
members and setup requests."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flowhq.admin_display import ReadOnlyAdmin, adopt
from flowhq.errors import FlowHQError
from tenants import services
from tenants.admin.display import QR_PREFIX, session_badge
from tenants.admin.forms import TEMPLATE_FIELDS, MembershipForm, ReplyTemplateForm
from tenants.models import (
    ChatPause,
    MessageLog,
    PortalMembership,
    ReplyTemplate,
    SetupRequest,
    WhatsAppSession,
)
from tenants.states import SessionState
from tenants.takeover import chat_pause_end


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(ReadOnlyAdmin[WhatsAppSession]):
    list_display = ["tenant", "state_badge", "phone", "wa_state", "wa_version", "qr_issued_at", "last_seen_at",
                    "last_error"]
    list_filter = ["state"]
    search_fields = ["tenant__name", "phone"]
    fields = readonly_fields = ("tenant", "state_badge", "qr_image", "qr_issued_at", "qr_count", "phone",
                                "wa_state", "wa_version", "last_seen_at", "last_error", "updated_at")
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
class ReplyTemplateAdmin(admin.ModelAdmin[ReplyTemplate]):
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

    def save_model(self, request: HttpRequest, obj: ReplyTemplate, form: forms.ModelForm[ReplyTemplate], change: bool) -> None:
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
class MessageLogAdmin(ReadOnlyAdmin[MessageLog]):
    list_display = ["created_at", "tenant", "direction", "source", "chat", "kind", "status", "short_body",
                    "latency_ms"]
    list_filter = ["tenant", "direction", "source", "status", "kind"]
    search_fields = ["message_id", "chat", "author", "body", "in_reply_to"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # a big log: no second COUNT(*) per page

    @admin.display(description="body")
    def short_body(self, log: MessageLog) -> str:
        return log.body[:60]


@admin.register(ChatPause)
class ChatPauseAdmin(admin.ModelAdmin[ChatPause]):
    """Human takeover: the chats the bot keeps quiet in because the owner answered from the phone."""

    list_display = ["chat", "tenant", "paused_until", "running", "reason", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["chat", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["tenant", "chat", "paused_until", "reason", "created_at", "updated_at"]
    actions = ["end"]

    @admin.display(description="running", boolean=True)
    def running(self, pause: ChatPause) -> bool:
        return pause.paused_until > timezone.now()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # pauses start when the owner writes from the phone

    @admin.action(description="End the pause: the bot answers these chats again")
    def end(self, request: HttpRequest, queryset: QuerySet[ChatPause]) -> None:
        for pause in queryset:
            chat_pause_end(tenant_id=pause.tenant_id, chat=pause.chat)
        self.message_user(request, f"Ended {len(queryset)} pause(s).", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: ChatPause) -> None:
        chat_pause_end(tenant_id=obj.tenant_id, chat=obj.chat)


@admin.register(PortalMembership)
class PortalMembershipAdmin(admin.ModelAdmin[PortalMembership]):
    form = MembershipForm
    list_display = ["email", "tenant", "created_at"]
    search_fields = ["email", "tenant__name"]
    list_select_related = ["tenant"]
    fields = ["email", "tenant"]


@admin.register(SetupRequest)
class SetupRequestAdmin(admin.ModelAdmin[SetupRequest]):
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
