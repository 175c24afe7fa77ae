"""Reads of the tenant domain."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Max, QuerySet
from django.db.models.functions import Lower

from flowhq.errors import NotFound
from tenants.messages import PENDING
from tenants.models import Direction, MessageLog, PortalMembership, ReplyTemplate, SetupRequest, Tenant


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.select_related("session", "worker").order_by("id")


def tenant_get(*, tenant_id: int) -> Tenant:
    try:
        return tenant_list().get(pk=tenant_id)
    except (Tenant.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No tenant with id {tenant_id}.") from None


def tenant_for_member(*, email: str) -> Tenant | None:
    # LOWER(email) = lower(x), not iexact (UPPER on PostgreSQL): it uses the unique index on LOWER(email).
    membership = (
        PortalMembership.objects.select_related("tenant__session", "tenant__worker")
        .alias(email_lower=Lower("email"))
        .filter(email_lower=email.strip().lower())
        .first()
    )
    return membership.tenant if membership else None


def membership_for_member(*, email: str) -> PortalMembership | None:
    """The membership of `email` (with its tenant, session and worker), if any."""
    return (
        PortalMembership.objects.select_related("tenant__session", "tenant__worker")
        .alias(email_lower=Lower("email"))
        .filter(email_lower=email.strip().lower())
        .first()
    )


def member_list(*, tenant: Tenant) -> QuerySet[PortalMembership]:
    return tenant.members.order_by("email")


def message_log_list(
    *, tenant_id: int, chat: str | None = None, direction: str | None = None, status: str | None = None,
    source: str | None = None,
) -> QuerySet[MessageLog]:
    logs = MessageLog.objects.filter(tenant_id=tenant_id)
    if chat:
        logs = logs.filter(chat=chat)
    if direction:
        logs = logs.filter(direction=direction)
    if status:
        logs = logs.filter(status=status)
    if source:
        logs = logs.filter(source=source)
    return logs.order_by("-created_at", "-id")


def template_list(*, tenant_id: int, enabled_only: bool = False) -> QuerySet[ReplyTemplate]:
    templates = ReplyTemplate.objects.filter(tenant_id=tenant_id)
    if enabled_only:
        templates = templates.filter(enabled=True)
    return templates.order_by("-priority", "id")


def template_version(*, tenant_id: int) -> tuple[datetime | None, int, datetime | None]:
    """Changes whenever the tenant's templates or reply settings do (an edit, an addition, a
    deletion), so a running bot can tell that the reload nudge for a change never reached it."""
    row = (
        Tenant.objects.filter(pk=tenant_id)
        .annotate(count=Count("templates"), latest=Max("templates__updated_at"))
        .values_list("updated_at", "count", "latest")
        .first()
    )
    return row if row is not None else (None, 0, None)


def setup_request_latest(*, email: str) -> SetupRequest | None:
    """The user's most recent setup request, whatever its state."""
    return (
        SetupRequest.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=email.strip().lower())
        .order_by("-created_at", "-id")
        .first()
    )


def pending_messages(*, tenant_id: int) -> list[MessageLog]:
    """Log entries still to be answered or sent, oldest first (the bot resumes them)."""
    return list(MessageLog.objects.filter(tenant_id=tenant_id, status__in=PENDING).order_by("created_at", "id"))


def message_get(*, log_id: int) -> MessageLog:
    return MessageLog.objects.get(pk=log_id)


def logged_ids(*, tenant_id: int, message_ids: list[str]) -> set[tuple[str, str]]:
    """Which of `message_ids` the log already has, as (message id, direction) pairs."""
    return set(MessageLog.objects.filter(tenant_id=tenant_id, message_id__in=message_ids).values_list(
        "message_id", "direction"
    ))


def outgoing_logged(*, tenant_id: int, message_id: str) -> bool:
    """Is `message_id` one of ours (an auto-reply or an API send) or already logged from the phone?"""
    return MessageLog.objects.filter(tenant_id=tenant_id, message_id=message_id, direction=Direction.OUT).exists()
