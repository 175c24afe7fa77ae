"""Portal members' accounts: the invitation an operator sends, and finding a member's account.

A portal member is a Django user (username and email: their address) whose email has a
`PortalMembership`. An operator invites an address from the admin ("Portal members" → "Send an
invitation"), the control-plane API (`POST /api/admin/tenants/<id>/invitations`) or
`manage.py portal_invite`: the address becomes a member of the tenant (if it is not yet), gets an
account without a password (if it has none), and receives an email with a link to choose a
password. The link is signed like Django's password reset links, with a salt of its own, and is
valid for PORTAL_INVITATION_DAYS; choosing a password (or signing in) spends it, because the
signature covers the password hash and the last sign-in.

Staff accounts are never invited: a link that sets a staff account's password would let one
operator take over another's account. Staff sign in through the admin.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from flowhq.errors import Conflict, Unavailable, ValidationFailed
from tenants import services
from tenants.models import Tenant

log = logging.getLogger(__name__)


class StaffAccount(Conflict):
    code = "staff_account"


class EmailFailed(Unavailable):
    code = "email_failed"


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Django's password-reset token, with its own salt and PORTAL_INVITATION_DAYS of validity."""

    key_salt = "flowhq.portal.invitations.InvitationTokenGenerator"

    def check_token(self, user: User | None, token: str | None) -> bool:
        if not (user and token):
            return False
        try:
            ts_b36, _ = token.split("-")
            timestamp = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, timestamp, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - timestamp <= settings.PORTAL_INVITATION_DAYS * 86400


invitation_tokens = InvitationTokenGenerator()


@dataclass(frozen=True)
class Invitation:
    email: str
    tenant_id: int
    link: str
    expires_at: datetime
    account_created: bool


def member_account(*, email: str) -> User | None:
    """The account that signs in with `email`: the one whose username is the address, else the only
    account with that email."""
    users: list[User] = list(get_user_model().objects.filter(email__iexact=email.strip())[:5])
    for user in users:
        if user.get_username().casefold() == email.strip().casefold():
            return user
    return users[0] if len(users) == 1 else None


def member_account_get_or_create(*, email: str) -> tuple[User, bool]:
    """The member's account; a new one (no password yet) if the address has none."""
    existing = member_account(email=email)
    if existing is not None:
        return existing, False
    address = email.strip()
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=address).exists():
        raise Conflict(f"An account named {address} exists with another email address.",
                       details={"email": address})
    user = user_model(username=address.lower(), email=address)
    user.set_unusable_password()
    user.save()
    return user, True


def invitation_link(*, user: User, base_url: str) -> str:
    path = reverse("portal:invitation", kwargs={
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": invitation_tokens.make_token(user),
    })
    return f"{(settings.PORTAL_BASE_URL or base_url).rstrip('/')}{path}"


def invitation_send(*, tenant: Tenant, email: str, base_url: str, invited_by: str = "") -> Invitation:
    """Make `email` a member of `tenant` (idempotent) and email them a link to choose a password.

    Raises Conflict if the address is a member of another tenant or a staff account's, and
    EmailFailed if the mail server refuses the message (the membership stays: send again).
    """
    email = email.strip()
    if not email or "@" not in email:
        raise ValidationFailed("Give the email address to invite.", details={"email": ["Enter a valid email."]})
    account = member_account(email=email)
    if account is not None and (account.is_staff or account.is_superuser):
        raise StaffAccount(f"{email} belongs to a staff account: staff sign in through the admin.",
                           details={"email": email})
    with transaction.atomic():
        membership, _ = services.membership_add(tenant=tenant, email=email)
        user, created = member_account_get_or_create(email=membership.email)
    link = invitation_link(user=user, base_url=base_url)
    context = {"tenant": tenant, "link": link, "email": membership.email, "invited_by": invited_by,
               "days": settings.PORTAL_INVITATION_DAYS}
    subject = render_to_string("portal/email/invitation_subject.txt", context).strip()
    body = render_to_string("portal/email/invitation.txt", context)
    try:
        send_mail(subject, body, None, [membership.email])
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("invitation not sent", extra={"tenant": tenant.pk, "why": str(exc)})
        raise EmailFailed(f"The mail server did not take the invitation: {exc}. Try again later.") from None
    log.info("invitation sent", extra={"tenant": tenant.pk, "invited_by": invited_by})
    return Invitation(
        email=membership.email, tenant_id=tenant.pk, link=link, account_created=created,
        expires_at=timezone.now() + timedelta(days=settings.PORTAL_INVITATION_DAYS),
    )
