"""Delivery for real: a `webhooks` Celery worker process, PostgreSQL, Redis, and an HTTP receiver on
loopback; every delivery is verified with the standardwebhooks package."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.utils import timezone

from tenants import messages, takeover
from tenants.models import MessageStatus
from tenants.services import session_transition
from tenants.states import SessionState
from tests.harness import Fleet, wait_for
from tests.webhooks.receiver import HANG, Receiver
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from workers.states import WorkerStatus
from workers.transitions import worker_transition

pytestmark = pytest.mark.integration

HOOKS_ENV = {
    "WEBHOOK_TIMEOUT_MS": "1000",
    "WEBHOOK_RETRY_BASE_MS": "500",
    "WEBHOOK_RETRY_MAX_MS": "8000",
    "WEBHOOK_MAX_ATTEMPTS": "6",
    "WEBHOOK_RELAY_INTERVAL_MS": "100",
}
QR = "data:image/png;base64,iVBORw0KGgo="
KINDS = ["message.received", "message.sent", "message.failed", "session.status", "worker.status",
         "chat.paused", "chat.resumed"]


@pytest.fixture
def hooks(fleet: Fleet) -> Fleet:
    fleet.env.update(HOOKS_ENV)
    fleet.webhooks_worker()
    return fleet


def endpoint_for(tenant, receiver: Receiver, events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    return services.endpoint_create(tenant=tenant, url=receiver.url, events=events or ["*"])


def delivery_of(endpoint: WebhookEndpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.get(endpoint=endpoint)


def every_kind_of_change(tenant) -> None:
    """One change of each kind, through the services the bot, the agents and the API call."""
    incoming = messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    reply, _ = messages.reply_claim(incoming=incoming, body="hello")
    messages.message_transition(log_id=reply.pk, to=MessageStatus.SENT)
    api = messages.outgoing_create(tenant=tenant, to="491522", body="shipped")
    messages.message_transition(log_id=api.pk, to=MessageStatus.FAILED, error="send failed")
    messages.phone_message_record(tenant_id=tenant.pk, message_id="PH1", chat="491511@c.us", body="owner")
    session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=QR, qr_issued_at=timezone.now())
    session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001", qr="")
    worker_transition(worker_id=tenant.worker.pk, to=WorkerStatus.STARTING, reason="start requested")
    takeover.chat_pause_renew(tenant_id=tenant.pk, chat="491511@c.us", until=timezone.now())
    takeover.chat_pause_end(tenant_id=tenant.pk, chat="491511@c.us")


def test_every_event_kind_is_delivered_once_per_endpoint_with_a_verifiable_signature(
        hooks, tenant, make_tenant, receivers):
    first, second = receivers(), receivers()
    (_, secret_a), (_, secret_b) = endpoint_for(tenant, first), endpoint_for(tenant, second)
    endpoint_for(make_tenant("Globex"), second)  # another tenant's endpoint: gets none of these
    every_kind_of_change(tenant)
    for got in (first, second):
        wait_for(lambda got=got: len(got.requests) >= 9, 30, what="nine events at the receiver")
    time.sleep(1.5)  # anything sent twice would be here by now
    ids = []
    for got, secret in ((first, secret_a), (second, secret_b)):
        assert len(got.requests) == 9
        bodies = [request.verified(secret) for request in got.requests]
        assert {b["type"] for b in bodies} == set(KINDS)
        assert all(b["data"]["tenant_id"] == tenant.pk for b in bodies)
        assert [r.headers["webhook-id"] for r in got.requests] == [b["id"] for b in bodies]
        ids.append(sorted(b["id"] for b in bodies))
        assert len(set(ids[-1])) == 9, "one delivery per event"
    by_type = {r.json()["type"]: r.json() for r in first.requests}
    assert by_type["message.received"]["data"]["message"]["message_id"] == "IN1"
    assert by_type["message.failed"]["data"]["message"]["error"] == "send failed"
    assert by_type["worker.status"]["data"]["worker"]["status"] == "STARTING"
    assert ids[0] == ids[1], "both endpoints get the same events, by the same ids"
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()


def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_try_with_the_backoffs_spacing(
        hooks, tenant, receivers):
    receiver = receivers(script=[500, 500, 500], then=200)
    endpoint, secret = endpoint_for(tenant, receiver)
    services.test_event_send(endpoint=endpoint)
    wait_for(lambda: delivery_of(endpoint).status == DeliveryStatus.DELIVERED, 30, what="delivered")
    delivery = delivery_of(endpoint)
    assert delivery.attempts == 4
    assert delivery.last_status_code == 200
    assert len(receiver.requests) == 4
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1, "the same event id every time"
    for request in receiver.requests:
        request.verified(secret)
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # Base 500 ms, ×2, ±20 % jitter: ~0.5 s, ~1 s, ~2 s.
    for gap, expected in zip(gaps, (0.5, 1.0, 2.0), strict=False):
        assert 0.8 * expected - 0.05 <= gap <= 1.2 * expected + 0.6, gaps
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert all(a.next_attempt_at for a in attempts[:3])
    assert attempts[3].next_attempt_at is None
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None


def test_a_hanging_receiver_is_timed_out_and_retried(hooks, tenant, receivers):
    receiver = receivers(script=[HANG], then=204)
    endpoint, _ = endpoint_for(tenant, receiver)
    started = time.monotonic()
    services.test_event_send(endpoint=endpoint)
    wait_for(lambda: delivery_of(endpoint).status == DeliveryStatus.DELIVERED, 30, what="delivered")
    first = WebhookAttempt.objects.get(delivery__endpoint=endpoint, number=1)
    assert first.status_code is None
    assert first.error == "timed out after 1000 ms"
    assert 900 <= first.latency_ms < 3000
    assert time.monotonic() - started < 10
    assert delivery_of(endpoint).last_status_code == 204


def test_410_gone_disables_the_endpoint(hooks, tenant, receivers):
    receiver = receivers(then=410)
    endpoint, _ = endpoint_for(tenant, receiver)
    services.test_event_send(endpoint=endpoint)
    wait_for(lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled, 30, what="disabled")
    endpoint.refresh_from_db()
    assert "410" in endpoint.disabled_reason
    assert delivery_of(endpoint).status == DeliveryStatus.FAILED
    assert delivery_of(endpoint).attempts == 1
    messages.incoming_claim(tenant_id=tenant.pk, message_id="AFTER", chat="491511@c.us", body="hi")
    time.sleep(1)
    assert len(receiver.requests) == 1, "nothing more is sent to a disabled endpoint"


def test_an_endpoint_failing_for_too_long_is_disabled_with_the_reason(fleet, tenant, receivers):
    fleet.env.update(HOOKS_ENV, WEBHOOK_DISABLE_AFTER_HOURS="0.0005")  # 1.8 s
    fleet.webhooks_worker()
    receiver = receivers(then=503)
    endpoint, _ = endpoint_for(tenant, receiver)
    services.test_event_send(endpoint=endpoint)
    wait_for(lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled, 30, what="disabled")
    endpoint.refresh_from_db()
    assert "every delivery failed" in endpoint.disabled_reason
    assert "HTTP 503" in endpoint.disabled_reason
    assert delivery_of(endpoint).status == DeliveryStatus.FAILED


def test_the_webhooks_worker_killed_mid_delivery_delivers_after_its_restart_with_the_same_event_id(
        hooks, tenant, receivers):
    receiver = receivers(script=[HANG], then=200)
    endpoint, secret = endpoint_for(tenant, receiver)
    services.test_event_send(endpoint=endpoint)
    wait_for(lambda: receiver.requests, 30, what="the first request to arrive")
    (worker,) = [p for p in hooks.procs if p.name == "webhooks"]
    os.killpg(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(10)
    assert delivery_of(endpoint).status == DeliveryStatus.PENDING
    hooks.webhooks_worker(name="webhooks-again")
    wait_for(lambda: delivery_of(endpoint).status == DeliveryStatus.DELIVERED, 40, what="delivered after restart")
    assert len(receiver.requests) == 2
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert again.verified(secret)["type"] == "webhook.test"
