"""Which changes write webhook events, in the same transaction, and what their bodies hold."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.utils import timezone

from tenants import messages, takeover
from tenants.models import MessageStatus
from tenants.services import session_transition
from tenants.states import SessionState
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from workers.states import WorkerStatus
from workers.transitions import worker_transition

QR = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def endpoint(tenant):
    endpoint, _ = services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hooks", events=["*"])
    return endpoint


def bodies(event_type: str) -> list[dict]:
    return [json.loads(e.body) for e in WebhookEvent.objects.filter(type=event_type).order_by("id")]


def test_every_kind_of_change_writes_its_event_with_the_api_objects(tenant, endpoint):
    incoming = messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    reply, _ = messages.reply_claim(incoming=incoming, body="hello")
    messages.message_transition(log_id=reply.pk, to=MessageStatus.SENT)
    messages.message_transition(log_id=incoming.pk, to=MessageStatus.REPLIED)
    messages.phone_message_record(tenant_id=tenant.pk, message_id="PH1", chat="491511@c.us", body="owner")
    api = messages.outgoing_create(tenant=tenant, to="491522", body="shipped")
    messages.message_transition(log_id=api.pk, to=MessageStatus.FAILED, error="no worker")
    session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=QR, qr_issued_at=timezone.now())
    session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001", qr="")
    worker_transition(worker_id=tenant.worker.pk, to=WorkerStatus.STARTING, reason="start requested")
    takeover.chat_pause_renew(tenant_id=tenant.pk, chat="491511@c.us", until=timezone.now())
    takeover.chat_pause_end(tenant_id=tenant.pk, chat="491511@c.us")

    (received,) = bodies("message.received")
    assert received["data"]["tenant_id"] == tenant.pk
    assert received["data"]["message"]["message_id"] == "IN1"
    assert {"id", "type", "timestamp", "data"} <= set(received)
    sent = bodies("message.sent")
    assert [b["data"]["message"]["source"] for b in sent] == ["bot", "phone"]
    (failed,) = bodies("message.failed")
    assert failed["data"]["message"]["error"] == "no worker"
    qr_ready, connected = bodies("session.status")
    assert qr_ready["data"]["session"]["state"] == "QR_READY"
    assert qr_ready["data"]["qr"] == QR
    assert connected["data"]["session"]["phone"] == "4915100000001"
    assert connected["data"]["qr"] is None
    (worker,) = bodies("worker.status")
    assert worker["data"]["worker"]["status"] == "STARTING"
    assert worker["data"]["previous_status"] == "STOPPED"
    (paused,) = bodies("chat.paused")
    (resumed,) = bodies("chat.resumed")
    assert paused["data"]["pause"]["chat"] == resumed["data"]["pause"]["chat"] == "491511@c.us"
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).count() == \
        WebhookEvent.objects.count() == 9


def test_an_endpoint_gets_only_the_events_it_asked_for(tenant, make_tenant):
    services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a", events=["message.received"])
    other = make_tenant("Other")
    services.endpoint_create(tenant=other, url="http://127.0.0.1:9/b", events=["*"])
    messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    messages.outgoing_create(tenant=tenant, to="491522", body="x")
    session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=QR)
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["message.received"]
    assert WebhookDelivery.objects.get().endpoint.url.endswith("/a")


def test_no_endpoint_no_event_and_a_disabled_endpoint_gets_nothing(tenant):
    messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    endpoint, _ = services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a", events=["*"], enabled=False)
    messages.incoming_claim(tenant_id=tenant.pk, message_id="IN2", chat="491511@c.us", body="hi")
    assert not WebhookEvent.objects.exists()


def test_the_event_rolls_back_with_the_change(tenant, endpoint):
    def change_that_fails_later() -> None:
        with transaction.atomic():
            messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
            raise RuntimeError("the change fails after the message was logged")

    with pytest.raises(RuntimeError):
        change_that_fails_later()
    assert not WebhookEvent.objects.exists()


def test_a_failing_webhook_never_fails_the_change(tenant, endpoint, monkeypatch):
    def broken(**_: object) -> None:
        raise RuntimeError("outbox broken")

    monkeypatch.setattr(services, "event_record", broken)
    row = messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    assert row is not None
    assert row.pk
    session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=QR)
    assert not WebhookEvent.objects.exists()


def test_a_renewed_pause_is_announced_again_and_a_later_deadline_only(tenant, endpoint):
    later = timezone.now() + timezone.timedelta(minutes=30)
    takeover.chat_pause_renew(tenant_id=tenant.pk, chat="491511@c.us", until=later)
    takeover.chat_pause_renew(tenant_id=tenant.pk, chat="491511@c.us", until=later - timezone.timedelta(minutes=1))
    takeover.chat_pause_renew(tenant_id=tenant.pk, chat="491511@c.us", until=later + timezone.timedelta(minutes=1))
    assert len(bodies("chat.paused")) == 2
    assert not takeover.chat_pause_end(tenant_id=tenant.pk, chat="nobody@c.us")
    assert not bodies("chat.resumed")


def test_a_session_write_without_news_is_no_event(tenant, endpoint):
    session_transition(tenant_id=tenant.pk, to=SessionState.NEW, wa_state="OPENING")
    assert not bodies("session.status")
    session_transition(tenant_id=tenant.pk, to=SessionState.NEW, last_error="WhatsApp Web did not load")
    (error,) = bodies("session.status")
    assert error["data"]["session"]["last_error"] == "WhatsApp Web did not load"


def test_old_events_are_pruned_unless_still_pending(tenant, endpoint):
    messages.incoming_claim(tenant_id=tenant.pk, message_id="IN1", chat="491511@c.us", body="hi")
    messages.incoming_claim(tenant_id=tenant.pk, message_id="IN2", chat="491511@c.us", body="hi")
    old = timezone.now() - timezone.timedelta(days=30)
    WebhookEvent.objects.update(created_at=old)
    delivered = WebhookDelivery.objects.order_by("id").first()
    WebhookDelivery.objects.filter(pk=delivered.pk).update(status=DeliveryStatus.DELIVERED)
    assert services.deliveries_prune(keep_days=14) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
