"""The tenant page's inlines: templates and members (editable), the latest messages (read-only)."""

from __future__ import annotations

from django.contrib import admin

from flowhq.admin_display import ReadOnly, latest_formset
from tenants.admin.forms import TEMPLATE_FIELDS, MembershipForm, MembershipFormSet, ReplyTemplateForm
from tenants.models import MessageLog, PortalMembership, ReplyTemplate, Tenant

LATEST_MESSAGES = 20


class ReplyTemplateInline(admin.TabularInline[ReplyTemplate, Tenant]):
    model = ReplyTemplate
    form = ReplyTemplateForm
    extra = 0
    fields = list(TEMPLATE_FIELDS)



class MembershipInline(admin.TabularInline[PortalMembership, Tenant]):
    model = PortalMembership
    form = MembershipForm
    formset = MembershipFormSet
    extra = 0
    fields = ["email", "can_edit_templates", "created_at"]
    readonly_fields = ["created_at"]
    verbose_name_plural = "portal members"



class MessageLogInline(ReadOnly, admin.TabularInline[MessageLog, Tenant]):
    model = MessageLog
    formset = latest_formset(LATEST_MESSAGES)
    fields = readonly_fields = ("created_at", "direction", "chat", "short_body", "status", "latency_ms", "error")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"latest {LATEST_MESSAGES} messages"

    @admin.display(description="body")
    def short_body(self, log: MessageLog) -> str:
        return log.body[:80]
