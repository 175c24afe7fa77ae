"""`manage.py portal_invite <email> [--tenant <id or slug>]`: invite a portal member and print the link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flowhq.errors import FlowHQError
from portal.invitations import invitation_send
from tenants import selectors
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Invite a portal member by email (linking them to a tenant) and print the invitation link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--tenant", help="Tenant id or slug; default: the tenant the email is a member of.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="Where the portal is served (PORTAL_BASE_URL wins when set).")

    def handle(self, *args: Any, email: str, tenant: str | None, base_url: str, **options: Any) -> None:
        chosen = self._tenant(email, tenant)
        try:
            invitation = invitation_send(tenant=chosen, email=email, base_url=base_url, invited_by="")
        except FlowHQError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Invited {invitation.email} to {chosen}. Their link (valid once, until "
                          f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{invitation.link}")

    def _tenant(self, email: str, given: str | None) -> Tenant:
        if given is None:
            found = selectors.tenant_for_member(email=email)
            if found is None:
                raise CommandError(f"{email} is not a member of any tenant: say which with --tenant.")
            return found
        tenant = Tenant.objects.filter(pk=int(given)).first() if given.isdigit() else None
        tenant = tenant or Tenant.objects.filter(slug=given).first()
        if tenant is None:
            raise CommandError(f"No tenant {given!r}.")
        return tenant
