"""Writes to the message log: the durable record, and the claims that make replies exactly-once.

- An incoming message is claimed by inserting its row (unique per tenant,
  WhatsApp message id and direction): a second insert of the same id fails,
  which is how a duplicate event, a redelivery or a racing worker is refused —
  durably, across restarts. A distinct message has a distinct id, so it is
  never refused as a duplicate.
- A reply is claimed by inserting the outgoing row with an id derived from the
  incoming one (`reply_message_id`). WhatsApp treats a message id as an
  idempotency key, so re-sending a claimed reply after a crash cannot deliver
  it twice, and a reply that was claimed but not confirmed is sent again.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from flowhq.errors import ValidationFailed
from flowhq.state_machine import StateMachine, move
from tenants.models import Direction, MessageLog, MessageStatus, Tenant

M = MessageStatus
TERMINAL = (M.REPLIED, M.SENT, M.NO_MATCH, M.DROPPED, M.FAILED)
PENDING = (M.RECEIVED, M.QUEUED, M.RATE_LIMITED)

MESSAGE_MACHINE = StateMachine(
    "message",
    {
        M.RECEIVED: {M.RATE_LIMITED, M.REPLIED, M.NO_MATCH, M.DROPPED, M.FAILED},
        M.QUEUED: {M.RATE_LIMITED, M.SENT, M.FAILED},
        M.RATE_LIMITED: {M.REPLIED, M.SENT, M.FAILED},
        M.REPLIED: set(), M.SENT: set(), M.NO_MATCH: set(), M.DROPPED: set(), M.FAILED: set(),
    },
)


def reply_message_id(tenant_id: int, incoming_id: str) -> str:
    """The id of the reply to `incoming_id`: the same on every attempt, by every worker."""
    digest = hashlib.sha1(f"flowhq:{tenant_id}:{incoming_id}".encode()).hexdigest()[:20].upper()
    return f"3EB0{digest}"


def new_message_id() -> str:
    return f"3EB0{uuid.uuid4().hex[:20].upper()}"


def incoming_claim(
    *, tenant_id: int, message_id: str, chat: str, body: str, wa_timestamp: datetime | None = None
) -> MessageLog | None:
    """Log an incoming message; None if this id was already claimed (a duplicate)."""
    try:
        with transaction.atomic():
            return MessageLog.objects.create(
                tenant_id=tenant_id, message_id=message_id, chat=chat, direction=Direction.IN, body=body,
                status=M.RECEIVED, wa_timestamp=wa_timestamp,
            )
    except IntegrityError:
        return None


def reply_claim(*, incoming: MessageLog, body: str) -> MessageLog:
    """The outgoing row answering `incoming`: created once, found again on a retry."""
    message_id = reply_message_id(incoming.tenant_id, incoming.message_id)
    try:
        with transaction.atomic():
            return MessageLog.objects.create(
                tenant_id=incoming.tenant_id, message_id=message_id, chat=incoming.chat, direction=Direction.OUT,
                body=body, status=M.QUEUED, in_reply_to=incoming.message_id,
            )
    except IntegrityError:
        return MessageLog.objects.get(tenant_id=incoming.tenant_id, message_id=message_id, direction=Direction.OUT)


def outgoing_create(*, tenant: Tenant, to: str, body: str) -> MessageLog:
    """A text an operator sends through the API; the tenant's worker delivers it."""
    number = to.strip().removeprefix("+").split("@", 1)[0]
    if not number.isdigit() or not 5 <= len(number) <= 20:
        raise ValidationFailed("`to` must be a phone number in international format (digits only).",
                               details={"to": ["Enter digits, e.g. 4915112345678."]})
    if not body.strip():
        raise ValidationFailed("The message may not be empty.", details={"body": ["This field may not be blank."]})
    return MessageLog.objects.create(
        tenant=tenant, message_id=new_message_id(), chat=f"{number}@c.us", direction=Direction.OUT,
        body=body, status=M.QUEUED,
    )


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
        log, _ = move(MessageLog, log_id, machine=MESSAGE_MACHINE, field="status", to=to, fields=values)
    return log
