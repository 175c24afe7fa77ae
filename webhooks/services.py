"""Writes of webhooks: endpoints and their secrets, the outbox, and one delivery attempt."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from flowhq.errors import ValidationFailed
from flowhq.state_machine import move
from tenants.models import Tenant
from webhooks import addresses, dispatch, events, selectors, sender, signing
from webhooks.backoff import retry_delay_ms
from webhooks.models import DeliveryStatus as D
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.states import DELIVERY_MACHINE

log = logging.getLogger(__name__)

SUBSCRIBABLE = sorted(t.value for t in EventType if t != EventType.TEST)
# Deliveries the relay queues per pass (it runs again at once while passes are full).
RELAY_BATCH = 500


# --- endpoints ---------------------------------------------------------------------------------

def _events_checked(event_types: Any) -> list[str]:
    if not isinstance(event_types, list) or not event_types:
        raise ValidationFailed("`events` must be a non-empty list of event types.",
                               details={"events": [f"Choose from {', '.join(SUBSCRIBABLE)} or \"*\"."]})
    unknown = sorted({str(t) for t in event_types} - {*SUBSCRIBABLE, "*"})
    if unknown:
        raise ValidationFailed(f"Unknown event type: {', '.join(unknown)}.",
                               details={"events": [f"Choose from {', '.join(SUBSCRIBABLE)} or \"*\"."]})
    return sorted({str(t) for t in event_types})


def endpoint_create(*, tenant: Tenant, url: str, events: list[str], description: str = "",
                    enabled: bool = True) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned here, and never again)."""
    addresses.resolve(url)
    secret = signing.secret_new()
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, url=url, events=_events_checked(events), description=description, enabled=enabled,
        secret=secret,
    )
    log.info("webhook endpoint created", extra={"tenant": tenant.pk, "endpoint": endpoint.pk})
    return endpoint, secret


def endpoint_update(*, endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    """Change url, events, description or enabled; enabling clears the disabled reason."""
    if "url" in fields:
        addresses.resolve(fields["url"])
    if "events" in fields:
        fields["events"] = _events_checked(fields["events"])
    if fields.get("enabled") is True:
        fields.update(disabled_reason="", failing_since=None)
    with transaction.atomic():
        for name, value in fields.items():
            setattr(endpoint, name, value)
        endpoint.save(update_fields=[*fields, "updated_at"])
        if fields.get("enabled") is False:
            _fail_pending(endpoint.pk, "the endpoint was disabled")
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing too for WEBHOOK_SECRET_OVERLAP_HOURS."""
    secret = signing.secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret, endpoint.secret = endpoint.secret, secret
        endpoint.previous_secret_expires_at = timezone.now() + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    log.info("webhook secret rotated", extra={"tenant": endpoint.tenant_id, "endpoint": endpoint.pk})
    return endpoint, secret


def endpoint_disable(*, endpoint_id: int, reason: str) -> None:
    """Stop sending to an endpoint (410, or failing too long); its pending deliveries fail."""
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
            enabled=False, disabled_reason=reason[:500], updated_at=timezone.now())
        _fail_pending(endpoint_id, f"the endpoint was disabled: {reason}")
    if changed:
        log.warning("webhook endpoint disabled", extra={"endpoint": endpoint_id, "why": reason})


def _fail_pending(endpoint_id: int, why: str) -> None:
    # PENDING → FAILED in bulk, as the delivery machine allows.
    WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=D.PENDING).update(
        status=D.FAILED, last_error=why[:500], next_attempt_at=None, updated_at=timezone.now())


def _secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    overlap = endpoint.previous_secret and endpoint.previous_secret_expires_at and \
        endpoint.previous_secret_expires_at > now
    return [endpoint.secret, endpoint.previous_secret] if overlap else [endpoint.secret]


# --- the outbox --------------------------------------------------------------------------------

def _body(event_id: str, event_type: str, data: dict[str, Any], now: datetime) -> str:
    def encoded(payload: dict[str, Any]) -> str:
        return json.dumps({"id": event_id, "type": event_type, "timestamp": now.isoformat(), "data": payload},
                          cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)

    body = encoded(data)
    if len(body.encode()) > settings.WEBHOOK_MAX_BODY_BYTES:
        body = encoded({"tenant_id": data.get("tenant_id"), "truncated": True})
    return body


def _event_write(*, tenant_id: int, event_type: str, data: dict[str, Any],
                 endpoint_ids: list[int]) -> WebhookEvent:
    now = timezone.now()
    event_id = f"msg_{uuid.uuid4().hex}"
    event = WebhookEvent.objects.create(event_id=event_id, tenant_id=tenant_id, type=event_type,
                                        body=_body(event_id, event_type, data, now))
    # Due at once: the relay queues them (nothing is published from the change's transaction).
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=event, endpoint_id=pk, next_attempt_at=now) for pk in endpoint_ids])
    return event


def event_record(*, tenant_id: int, event_type: str, data: dict[str, Any]) -> WebhookEvent | None:
    """Write the event and one delivery per endpoint that wants it; nothing if none does.

    Called inside the transaction of the change; the deliveries are queued once it commits."""
    wanting = selectors.endpoints_wanting(tenant_id=tenant_id, event_type=event_type)
    if not wanting:
        return None
    with transaction.atomic():
        return _event_write(tenant_id=tenant_id, event_type=event_type, data=data,
                            endpoint_ids=[e.pk for e in wanting])


def test_event_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint only (even if it is disabled: the operator asks)."""
    event_type, data = events.test_event(tenant_id=endpoint.tenant_id, endpoint_id=endpoint.pk)
    with transaction.atomic():
        event = _event_write(tenant_id=endpoint.tenant_id, event_type=event_type, data=data,
                             endpoint_ids=[endpoint.pk])
    return event.deliveries.get()


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again: the same event (same id, same body), with a fresh count of attempts."""
    now = timezone.now()
    with transaction.atomic():
        delivery, _ = move(WebhookDelivery, delivery.pk, machine=DELIVERY_MACHINE, field="status", to=D.PENDING,
                           fields={"attempts": 0, "next_attempt_at": now, "last_error": ""})
    return delivery  # due now: the relay queues it


# --- delivering --------------------------------------------------------------------------------

def _claim_lease() -> timedelta:
    return timedelta(milliseconds=settings.WEBHOOK_TIMEOUT_MS * 2 + 2000)


# How long a queued message has to be taken before the relay queues the delivery again (the message
# was lost, or the worker that took it died before claiming it). The relay keeps the queue shallow
# (WEBHOOK_QUEUE_DEPTH), so a message waits there far less than this.
QUEUE_LEASE = timedelta(minutes=10)


def deliveries_due_enqueue(*, limit: int = RELAY_BATCH) -> int:
    """The relay's pass: queue the deliveries whose deadline passed (just written, a retry whose time
    came, or lost with their message or worker), each under a new deadline that is its token.

    Rows another relay holds are skipped, so relays in several workers never queue one twice.
    Returns how many were queued."""
    now = timezone.now()
    token = now + QUEUE_LEASE
    with transaction.atomic():
        due = list(WebhookDelivery.objects.select_for_update(skip_locked=True)
                   .filter(status=D.PENDING, next_attempt_at__lte=now)
                   .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
        if due:
            WebhookDelivery.objects.filter(pk__in=due).update(next_attempt_at=token)
    for pk in due:
        dispatch.enqueue(pk, token)
    return len(due)


def delivery_attempt(*, delivery_id: int, token: datetime) -> WebhookDelivery | None:
    """Claim the delivery (only while its deadline is `token`), POST it, record the outcome.

    Returns None when another copy of the task claimed it, or it is no longer pending."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=D.PENDING, next_attempt_at=token).update(
        next_attempt_at=now + _claim_lease(), attempts=F("attempts") + 1, updated_at=now)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = event.body.encode()
    try:
        target = addresses.resolve(endpoint.url)
    except addresses.ReceiverRefused as exc:
        outcome = sender.Outcome(None, 0, exc.message, "")
    else:
        stamp = int(time.time())
        headers = signing.headers(_secrets(endpoint, now), event_id=event.event_id, timestamp=stamp, body=body)
        outcome = sender.post(target, body=body, headers=headers, timeout_s=settings.WEBHOOK_TIMEOUT_MS / 1000)
    return _record(delivery, outcome, started=now)


def _record(delivery: WebhookDelivery, outcome: sender.Outcome, *, started: datetime) -> WebhookDelivery:
    now = timezone.now()
    endpoint = delivery.endpoint
    error = outcome.error or ("" if outcome.ok else f"HTTP {outcome.status_code}")
    last = {"last_status_code": outcome.status_code, "last_error": error[:500],
            "last_latency_ms": outcome.latency_ms}
    retry_at: datetime | None = None
    disable_why = ""
    with transaction.atomic():
        current = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if outcome.ok:
            to, fields = D.DELIVERED, {**last, "delivered_at": now, "next_attempt_at": None}
        elif outcome.status_code == 410:
            to, fields = D.FAILED, {**last, "next_attempt_at": None}
            disable_why = "the receiver answered 410 Gone"
        elif current.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            to, fields = D.FAILED, {**last, "next_attempt_at": None,
                                    "last_error": f"gave up after {current.attempts} attempts: {error}"[:500]}
        else:
            retry_at = now + timedelta(milliseconds=retry_delay_ms(current.attempts))
            to, fields = D.PENDING, {**last, "next_attempt_at": retry_at}
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk, number=current.attempts, started_at=started, status_code=outcome.status_code,
            latency_ms=outcome.latency_ms, error=error[:500], response_excerpt=outcome.excerpt[:500],
            next_attempt_at=retry_at)
        if current.status != D.PENDING:  # settled meanwhile by a copy whose lease had run out
            return current
        delivery, _ = move(WebhookDelivery, delivery.pk, machine=DELIVERY_MACHINE, field="status", to=to,
                           fields=fields)
        if outcome.ok:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
        else:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=started)
            failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
            limit = timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
            if not disable_why and failing_since and now - failing_since >= limit:
                disable_why = f"every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_HOURS:g} hours (last: {error})"
        if disable_why:
            endpoint_disable(endpoint_id=endpoint.pk, reason=disable_why)
    log.info("webhook attempt", extra={
        "tenant": delivery.event.tenant_id, "endpoint": endpoint.pk, "event": delivery.event.event_id,
        "attempt": delivery.attempts, "status": outcome.status_code, "ms": outcome.latency_ms,
        "result": delivery.status, "error": error[:200]})
    return delivery  # a retry is queued by the relay when its time comes


def deliveries_prune(*, keep_days: int | None = None) -> int:
    """Delete events (with their deliveries and attempts) older than WEBHOOK_KEEP_DAYS, unless a
    delivery of theirs is still pending. Returns how many events went."""
    cutoff = timezone.now() - timedelta(days=keep_days or settings.WEBHOOK_KEEP_DAYS)
    old = WebhookEvent.objects.filter(created_at__lt=cutoff).exclude(deliveries__status=D.PENDING)
    deleted, by_model = old.delete()
    return by_model.get(WebhookEvent._meta.label, 0)
