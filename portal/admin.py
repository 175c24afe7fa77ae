"""The admin's "Portal members" page, with the invitation an operator sends from it.

The page itself belongs to the tenant domain (tenants/admin/related.py); the portal adds, from
above, the field that grants template editing and the "send an invitation" action.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from flowhq.errors import FlowHQError
from portal.invitations import invitation_send
from tenants.admin.related import PortalMembershipAdmin
from tenants.models import PortalMembership

admin.site.unregister(PortalMembership)


@admin.register(PortalMembership)
class PortalMemberAdmin(PortalMembershipAdmin):
    list_display = ["email", "tenant", "can_edit_templates", "created_at"]
    list_filter = ["can_edit_templates"]
    fields = ["email", "tenant", "can_edit_templates"]
    actions = ["send_invitation"]

    @admin.action(description="Send an invitation (a link to choose a password) by email", permissions=["change"])
    def send_invitation(self, request: HttpRequest, queryset: QuerySet[PortalMembership]) -> None:
        for membership in queryset.select_related("tenant").order_by("email"):
            try:
                invitation_send(tenant=membership.tenant, email=membership.email,
                                base_url=request.build_absolute_uri("/"), invited_by=str(request.user))
            except FlowHQError as exc:
                self.message_user(request, f"{membership.email}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Invitation sent to {membership.email}.", messages.SUCCESS)
