"""Writes to the tenant domain. Views, tasks, the admin and the bot call these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from flowhq.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from flowhq.state_machine import move
from tenants import signals
from tenants.models import PortalMembership, ReplyTemplate, SetupRequest, Tenant, WhatsAppSession
from tenants.states import (
    SESSION_MACHINE,
    SETUP_REQUEST_MACHINE,
    TENANT_MACHINE,
    SessionState,
    SetupRequestState,
    TenantStatus,
)
from tenants.templates import validate_template

log = logging.getLogger(__name__)
_SLUG_ATTEMPTS = 20
_T = TypeVar("_T")


def _free_slug(base: str) -> str:
    base = slugify(base)[:70] or "tenant"
    taken = set(Tenant.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


def _given_slug(slug: str) -> str:
    """A slug the caller chose, as it is stored; one with no letter or digit (`-`) is refused."""
    chosen = slugify(slug)
    if not chosen:
        raise ValidationFailed("A slug needs a letter or a digit.",
                               details={"slug": ["A slug needs a letter or a digit."]})
    return chosen


def tenant_create(
    *, name: str, slug: str = "", rate_limit_per_minute: int | None = None, reply_in_groups: bool = False,
    reply_to_media: bool = True,
) -> Tenant:
    """Create a tenant with its (empty) WhatsApp session; its worker record comes with it (`tenant_created`)."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A tenant needs a name.", details={"name": ["This field may not be blank."]})
    given = _given_slug(slug) if slug else ""
    for _ in range(_SLUG_ATTEMPTS):
        chosen = given or _free_slug(name)
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(
                    name=name, slug=chosen, rate_limit_per_minute=rate_limit_per_minute,
                    reply_in_groups=reply_in_groups, reply_to_media=reply_to_media,
                )
                WhatsAppSession.objects.create(tenant=tenant)
                signals.tenant_created.send(sender=Tenant, tenant=tenant)
                return tenant
        except IntegrityError:
            if slug:
                raise Conflict(f"The slug {chosen!r} is taken.", details={"slug": chosen}) from None
    raise Conflict("Could not find a free slug for this name; give one explicitly.")


# What the running bot reads from the tenant (its name is the {tenant} placeholder): a change reloads it.
BOT_SETTINGS = {"name", "rate_limit_per_minute", "reply_in_groups", "reply_to_media"}


def tenant_update(*, tenant: Tenant, **fields: Any) -> Tenant:
    allowed = {"slug", *BOT_SETTINGS}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    if "slug" in fields:
        fields["slug"] = _given_slug(fields["slug"])
    for key, value in fields.items():
        setattr(tenant, key, value)
    try:
        with transaction.atomic():
            tenant.save(update_fields=[*fields, "updated_at"])
            if BOT_SETTINGS & set(fields):
                _templates_changed(tenant.pk)
    except IntegrityError:
        raise Conflict(f"The slug {tenant.slug!r} is taken.", details={"slug": tenant.slug}) from None
    return tenant


def tenant_delete(*, tenant: Tenant) -> None:
    """Delete the tenant, unless a receiver of `tenant_deleting` refuses (its worker still runs)."""
    signals.tenant_deleting.send(sender=Tenant, tenant=tenant)
    tenant.delete()


def _mirror(move_status: Callable[[], _T], *, strict: bool, what: str, tenant_id: int) -> _T | None:
    """Run a status move; with `strict=False` an illegal one is logged and skipped.

    The bot, the agent and the sweep mirror what they see into the tenant's and
    the session's status: an illegal move there must not fail the larger
    operation it belongs to.
    """
    try:
        return move_status()
    except IllegalTransition as exc:
        if strict:
            raise
        log.warning(f"{what} status not recorded", extra={"tenant": tenant_id, "why": exc.message})
        return None


def tenant_transition(*, tenant_id: int, to: TenantStatus, reason: str = "", strict: bool = True) -> Tenant | None:
    def moved() -> Tenant:
        with transaction.atomic():
            tenant, _ = move(
                Tenant, tenant_id, machine=TENANT_MACHINE, field="status", to=to,
                fields={"status_reason": reason[:500]},
            )
        return tenant

    return _mirror(moved, strict=strict, what="tenant", tenant_id=tenant_id)


def session_transition(
    *, tenant_id: int, to: SessionState, strict: bool = True, **fields: Any
) -> WhatsAppSession | None:
    """Move the tenant's WhatsApp session to `to`, writing `fields` with it."""
    if "last_error" in fields:
        fields["last_error"] = (fields["last_error"] or "")[:500]

    def moved() -> WhatsAppSession:
        with transaction.atomic():
            session_id = WhatsAppSession.objects.values_list("pk", flat=True).get(tenant_id=tenant_id)
            session, previous = move(
                WhatsAppSession, session_id, machine=SESSION_MACHINE, field="state", to=to, fields=fields
            )
            signals.session_changed.send(sender=WhatsAppSession, session=session, previous=previous,
                                         changed=frozenset(fields))
        return session

    return _mirror(moved, strict=strict, what="session", tenant_id=tenant_id)


def session_process_gone(*, tenant_id: int, why: str) -> None:
    """The tenant's bot process has ended (stopped, crashed, killed): its session is no longer
    connected, and a QR code it showed is no longer scannable."""
    state = WhatsAppSession.objects.filter(tenant_id=tenant_id).values_list("state", flat=True).first()
    if state == SessionState.CONNECTED:
        session_transition(tenant_id=tenant_id, to=SessionState.DISCONNECTED, wa_state="", last_error=why)
    elif state == SessionState.QR_READY:
        session_transition(tenant_id=tenant_id, to=SessionState.NEW, qr="", last_error="")


def membership_add(*, tenant: Tenant, email: str) -> tuple[PortalMembership, bool]:
    """Link `email` to `tenant`. Returns (membership, created); idempotent."""
    email = email.strip()
    existing = PortalMembership.objects.filter(email__iexact=email).first()
    if existing is not None:
        if existing.tenant_id != tenant.pk:
            raise Conflict(
                f"{email} is already a member of another tenant.", details={"email": email}
            )
        return existing, False
    try:
        with transaction.atomic():
            return PortalMembership.objects.create(tenant=tenant, email=email), True
    except IntegrityError:
        # A concurrent call linked the same email first: report what won.
        return membership_add(tenant=tenant, email=email)


def membership_grant(*, membership: PortalMembership, can_edit_templates: bool) -> PortalMembership:
    """What the member may do in the portal beyond seeing: change the tenant's reply templates."""
    if membership.can_edit_templates != can_edit_templates:
        membership.can_edit_templates = can_edit_templates
        membership.save(update_fields=["can_edit_templates"])
    return membership


def membership_remove(*, tenant: Tenant, email: str) -> None:
    deleted, _ = PortalMembership.objects.filter(tenant=tenant, email__iexact=email.strip()).delete()
    if not deleted:
        raise NotFound(f"{email} is not a member of this tenant.")


def setup_request_submit(*, email: str, business_name: str, phone: str) -> SetupRequest:
    if PortalMembership.objects.filter(email__iexact=email).exists():
        raise Conflict("You already have a tenant.")
    try:
        with transaction.atomic():
            return SetupRequest.objects.create(email=email, business_name=business_name, phone=phone)
    except IntegrityError:
        raise Conflict("You already have a pending setup request.") from None


def setup_request_approve(*, request_id: int, decided_by: str) -> SetupRequest:
    """Approve a pending request: create its tenant and make the user a member."""
    with transaction.atomic():
        request, _ = move(
            SetupRequest, request_id, machine=SETUP_REQUEST_MACHINE, field="state",
            to=SetupRequestState.APPROVED,
            fields={"decided_by": decided_by, "decided_at": timezone.now()},
            guard=_must_be_pending,
        )
        tenant = tenant_create(name=request.business_name)
        membership_add(tenant=tenant, email=request.email)
        request.tenant = tenant
        request.save(update_fields=["tenant", "updated_at"])
    return request


def setup_request_reject(*, request_id: int, decided_by: str, note: str = "") -> SetupRequest:
    with transaction.atomic():
        request, _ = move(
            SetupRequest, request_id, machine=SETUP_REQUEST_MACHINE, field="state",
            to=SetupRequestState.REJECTED,
            fields={"decided_by": decided_by, "decided_at": timezone.now(), "note": note[:500]},
            guard=_must_be_pending,
        )
    return request


def _must_be_pending(request: SetupRequest) -> None:
    if request.state != SetupRequestState.PENDING:
        raise Conflict(f"This setup request is already {request.state.lower()}.")


def _templates_changed(tenant_id: int) -> None:
    signals.templates_changed.send(sender=Tenant, tenant_id=tenant_id)


def template_create(*, tenant: Tenant, match: str, pattern: str = "", body: str, priority: int = 0,
                    enabled: bool = True) -> ReplyTemplate:
    validate_template(match=match, pattern=pattern, body=body)
    with transaction.atomic():
        template = ReplyTemplate.objects.create(
            tenant=tenant, match=match, pattern=pattern, body=body, priority=priority, enabled=enabled
        )
        _templates_changed(tenant.pk)
    return template


def template_update(*, template: ReplyTemplate, **fields: Any) -> ReplyTemplate:
    allowed = {"match", "pattern", "body", "priority", "enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    for key, value in fields.items():
        setattr(template, key, value)
    validate_template(match=template.match, pattern=template.pattern, body=template.body)
    with transaction.atomic():
        template.save(update_fields=[*fields, "updated_at"])
        _templates_changed(template.tenant_id)
    return template


def template_delete(*, template: ReplyTemplate) -> None:
    with transaction.atomic():
        template.delete()
        _templates_changed(template.tenant_id)
