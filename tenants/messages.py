"""Writes to the message log: the durable record, and the claims that make replies exactly-once.

- An incoming message is claimed by inserting its row (unique per tenant,
  WhatsApp message id and direction): a second insert of the same id fails,
  which is how a duplicate event, a redelivery or a racing worker is refused —
  durably, across restarts. A distinct message has a distinct id, so it is
  never refused as a duplicate.
- A reply is claimed by inserting the outgoing row with an id derived from the
  incoming one (`reply_message_id`), in WhatsApp Web's own id format. The bot
  sends it under that key and, before any (re)send, looks the key up in the
  page: a reply WhatsApp Web already holds is not sent again (what this does and
  does not guarantee: docs/architecture.md, "Exactly one reply").
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from flowhq.errors import ValidationFailed
from flowhq.state_machine import StateMachine, move
from tenants import signals
from tenants.models import Direction, MessageLog, MessageSource, MessageStatus, Tenant

M = MessageStatus
TERMINAL = (M.REPLIED, M.SENT, M.NO_MATCH, M.DROPPED, M.FAILED, M.IGNORED, M.REVOKED)
PENDING = (M.RECEIVED, M.QUEUED, M.RATE_LIMITED)
_NUMBER = re.compile(r"[0-9]{5,20}")

# Incoming rows go RECEIVED → (RATE_LIMITED →) REPLIED, or end as NO_MATCH, IGNORED (policy, human
# takeover), REVOKED (deleted by the customer while waiting), DROPPED, FAILED. Outgoing rows go
# QUEUED → (RATE_LIMITED →) SENT, or FAILED, or DROPPED (not sent: the chat was taken over or the
# message it answered was deleted).
MESSAGE_MACHINE = StateMachine(
    "message",
    {
        M.RECEIVED: {M.RATE_LIMITED, M.REPLIED, M.NO_MATCH, M.DROPPED, M.FAILED, M.IGNORED, M.REVOKED},
        M.QUEUED: {M.RATE_LIMITED, M.SENT, M.FAILED, M.DROPPED},
        M.RATE_LIMITED: {M.REPLIED, M.SENT, M.FAILED, M.DROPPED, M.IGNORED, M.REVOKED},
        **{status: set() for status in TERMINAL},
    },
)


def reply_message_id(tenant_id: int, incoming_id: str) -> str:
    """The id of the reply to `incoming_id`: the same on every attempt, by every worker."""
    digest = hashlib.sha1(f"flowhq:{tenant_id}:{incoming_id}".encode()).hexdigest()[:20].upper()
    return f"3EB0{digest}"


def new_message_id() -> str:
    return f"3EB0{uuid.uuid4().hex[:20].upper()}"


def incoming_claim(
    *, tenant_id: int, message_id: str, chat: str, body: str, wa_timestamp: datetime | None = None,
    kind: str = "chat", author: str = "", ignored: str = "",
) -> MessageLog | None:
    """Log an incoming message; None if this id was already claimed (a duplicate).

    With `ignored` (the reason) it is logged as IGNORED at once: seen, and never to be answered."""
    terminal = {"status": M.IGNORED, "error": ignored[:500], "completed_at": timezone.now(), "latency_ms": 0}
    try:
        with transaction.atomic():
            row = MessageLog.objects.create(
                tenant_id=tenant_id, message_id=message_id, chat=chat, direction=Direction.IN,
                source=MessageSource.CUSTOMER, kind=kind[:32], author=author, body=body, wa_timestamp=wa_timestamp,
                **(terminal if ignored else {"status": M.RECEIVED}),
            )
            signals.message_logged.send(sender=MessageLog, log=row)
            return row
    except IntegrityError:
        return None


def phone_message_record(
    *, tenant_id: int, message_id: str, chat: str, body: str, kind: str = "chat",
    wa_timestamp: datetime | None = None,
) -> MessageLog | None:
    """Log a message the owner typed on the linked phone (sent, by them); None if already logged."""
    try:
        with transaction.atomic():
            row = MessageLog.objects.create(
                tenant_id=tenant_id, message_id=message_id, chat=chat, direction=Direction.OUT,
                source=MessageSource.PHONE, kind=kind[:32], body=body, status=M.SENT, wa_timestamp=wa_timestamp,
                completed_at=timezone.now(), latency_ms=0,
            )
            signals.message_logged.send(sender=MessageLog, log=row)
            return row
    except IntegrityError:
        return None


def incoming_revoke(*, tenant_id: int, message_id: str) -> MessageLog | None:
    """The customer deleted a message: if it was still waiting it becomes REVOKED (and a reply
    claimed for it but not sent, DROPPED). Returns the row if it was still waiting."""
    with transaction.atomic():
        row = (MessageLog.objects.select_for_update()
               .filter(tenant_id=tenant_id, message_id=message_id, direction=Direction.IN, status__in=PENDING)
               .first())
        if row is None:
            return None
        revoked = message_transition(log_id=row.pk, to=M.REVOKED, error="deleted by the customer before it was answered")
        reply = MessageLog.objects.filter(
            tenant_id=tenant_id, direction=Direction.OUT, in_reply_to=message_id, status__in=PENDING
        ).first()
        if reply is not None:
            message_transition(log_id=reply.pk, to=M.DROPPED, error="not sent: the customer deleted the message")
    return revoked


def incoming_edit(*, tenant_id: int, message_id: str, body: str) -> bool:
    """The customer edited a message; a message still waiting is answered by its new text."""
    return bool(MessageLog.objects.filter(
        tenant_id=tenant_id, message_id=message_id, direction=Direction.IN, status__in=PENDING
    ).update(body=body, updated_at=timezone.now()))


def reply_claim(*, incoming: MessageLog, body: str) -> tuple[MessageLog, bool]:
    """The outgoing row answering `incoming`: created once, found again on a retry. Returns
    (row, created): a row just created has never been sent by anyone."""
    message_id = reply_message_id(incoming.tenant_id, incoming.message_id)
    try:
        with transaction.atomic():
            row = MessageLog.objects.create(
                tenant_id=incoming.tenant_id, message_id=message_id, chat=incoming.chat, direction=Direction.OUT,
                source=MessageSource.BOT, body=body, status=M.QUEUED, in_reply_to=incoming.message_id,
            )
            signals.message_logged.send(sender=MessageLog, log=row)
            return row, True
    except IntegrityError:
        found = MessageLog.objects.get(tenant_id=incoming.tenant_id, message_id=message_id, direction=Direction.OUT)
        return found, False


def _recipient_number(to: str) -> str:
    """The number in `to` (`4915…`, `+4915…` or `4915…@c.us`); ValidationFailed for anything else."""
    number, _, server = to.strip().removeprefix("+").partition("@")
    if server == "g.us":
        raise ValidationFailed("Sending to groups is not supported yet; send to a phone number.",
                               details={"to": ["Enter a phone number, not a group id."]})
    # ASCII digits only: str.isdigit() would take "٤٩١" too, which no WhatsApp id has.
    if server not in ("", "c.us") or not _NUMBER.fullmatch(number):
        raise ValidationFailed("`to` must be a phone number in international format (digits only).",
                               details={"to": ["Enter digits, e.g. 4915112345678."]})
    return number


def outgoing_create(*, tenant: Tenant, to: str, body: str) -> MessageLog:
    """A text an operator sends through the API; the tenant's worker delivers it."""
    number = _recipient_number(to)
    if not body.strip():
        raise ValidationFailed("The message may not be empty.", details={"body": ["This field may not be blank."]})
    with transaction.atomic():
        row = MessageLog.objects.create(
            tenant=tenant, message_id=new_message_id(), chat=f"{number}@c.us", direction=Direction.OUT,
            source=MessageSource.API, body=body, status=M.QUEUED,
        )
        signals.message_logged.send(sender=MessageLog, log=row)
    return row


def message_transition(*, log_id: int, to: MessageStatus, **fields: Any) -> MessageLog:
    """Move a log entry along its status machine; completing it stamps completion and latency."""
    if to in TERMINAL:
        now = timezone.now()
        fields.setdefault("completed_at", now)

        def with_latency(log: MessageLog) -> dict[str, Any]:
            latency = int((fields["completed_at"] - log.created_at).total_seconds() * 1000)
            return {**fields, "latency_ms": max(0, latency)}

        values: Any = with_latency
    else:
        values = fields
    with transaction.atomic():
        log, previous = move(MessageLog, log_id, machine=MESSAGE_MACHINE, field="status", to=to, fields=values)
        if previous != to:
            signals.message_status_changed.send(sender=MessageLog, log=log, previous=previous)
    return log
