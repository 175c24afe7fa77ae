"""The relay: due deliveries reach the `webhooks` queue once each, and the queue stays shallow.

Real PostgreSQL (row locks are the point) and the real Redis broker."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.utils import timezone

from flowhq.celery import app
from tenants import messages
from webhooks import dispatch, services
from webhooks.models import WebhookDelivery
from webhooks.relay import Relay


@pytest.fixture
def empty_queue():
    with app.connection_or_acquire() as conn:
        conn.default_channel.queue_purge(dispatch.QUEUE)
    yield
    with app.connection_or_acquire() as conn:
        conn.default_channel.queue_purge(dispatch.QUEUE)


def due_deliveries(tenant, count: int) -> None:
    for n in range(count):
        messages.incoming_claim(tenant_id=tenant.pk, message_id=f"IN{n}", chat="491511@c.us", body="hi")


@pytest.mark.django_db(transaction=True)
def test_relays_racing_queue_each_due_delivery_exactly_once(make_tenant, monkeypatch):
    tenant = make_tenant("Acme")
    for path in ("/a", "/b"):
        services.endpoint_create(tenant=tenant, url=f"http://127.0.0.1:9{path}", events=["*"])
    due_deliveries(tenant, 150)
    queued: list[int] = []
    lock = threading.Lock()

    def record(delivery_id: int, token: object) -> None:
        with lock:
            queued.append(delivery_id)

    monkeypatch.setattr(dispatch, "enqueue", record)
    start = threading.Barrier(4)

    def relay() -> None:
        start.wait()
        try:
            while services.deliveries_due_enqueue(limit=20):
                pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(queued) == 300
    assert sorted(queued) == sorted(WebhookDelivery.objects.values_list("pk", flat=True)), "each once"
    assert not WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now()).exists()


@pytest.mark.django_db(transaction=True)
def test_the_relay_fills_the_queue_to_its_depth_and_leaves_the_rest_due_in_the_database(
        make_tenant, settings, empty_queue):
    settings.WEBHOOK_QUEUE_DEPTH = 7
    tenant = make_tenant("Acme")
    services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a", events=["*"])
    due_deliveries(tenant, 20)
    relay = Relay(interval_s=0.01)
    for _ in range(5):
        relay.tick()
    assert dispatch.queued() == 7
    assert WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now()).count() == 13
    with app.connection_or_acquire() as conn:
        conn.default_channel.queue_purge(dispatch.QUEUE)
    relay.tick()
    assert dispatch.queued() == 7
    assert WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now()).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_leaves_the_deliveries_due_and_the_relay_running(make_tenant, settings, monkeypatch):
    tenant = make_tenant("Acme")
    services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a", events=["*"])
    due_deliveries(tenant, 3)

    def broker_down() -> int:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(dispatch, "queued", broker_down)
    relay = Relay(interval_s=0.01)
    assert relay.tick() is False
    assert WebhookDelivery.objects.filter(next_attempt_at__lte=timezone.now()).count() == 3
