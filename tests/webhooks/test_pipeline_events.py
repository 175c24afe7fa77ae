"""The real pipeline's events reach a receiver: a bot in Chromium against the simulator links,
answers a customer, sends an operator's text, and is taken over from the phone."""

from __future__ import annotations

import time

import pytest

from tenants import services as tenant_services
from tenants.takeover import chat_pause_end
from tests.botkit import Sim, link, start_agent
from tests.harness import wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import HOOKS_ENV
from webhooks import services
from workers.commands import send_text

pytestmark = pytest.mark.integration
PHONE = "4915100000042"
CUSTOMER = "4917000000042"


def events_of(receiver: Receiver, secret: str) -> list[dict]:
    return [request.verified(secret) for request in list(receiver.requests)]


def test_a_linked_bot_answering_and_taken_over_sends_every_event_once(bot_fleet, sim: Sim, tenant, receivers):
    bot_fleet.env.update(HOOKS_ENV, HUMAN_TAKEOVER_MINUTES="5")
    bot_fleet.webhooks_worker()
    receiver = receivers()
    _, secret = services.endpoint_create(tenant=tenant, url=receiver.url, events=["*"])
    tenant_services.template_create(tenant=tenant, match="default", body="Thanks, noted.")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)

    sim.message(PHONE, "WHK1", CUSTOMER, "hello bot")
    wait_for(lambda: sim.replies(PHONE, "Thanks, noted."), 30, what="the reply")
    send_text(tenant=tenant, to=CUSTOMER, body="Your order shipped")
    wait_for(lambda: sim.replies(PHONE, "Your order shipped"), 30, what="the operator's text")
    sim.send(PHONE, "own", id="WHKOWN", to=CUSTOMER, body="Maria here")

    def seen() -> list[dict]:
        got = events_of(receiver, secret)
        kinds = {e["type"] for e in got}
        return got if {"chat.paused", "message.sent"} <= kinds and sum(
            e["type"] == "message.sent" for e in got) >= 3 else []

    wait_for(seen, 30, what="the takeover's events")
    chat_pause_end(tenant_id=tenant.pk, chat=f"{CUSTOMER}@c.us")
    wait_for(lambda: any(e["type"] == "chat.resumed" for e in events_of(receiver, secret)), 20, what="resumed")
    time.sleep(1.5)

    got = events_of(receiver, secret)
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)), "every event delivered once"
    by_type: dict[str, list[dict]] = {}
    for event in got:
        by_type.setdefault(event["type"], []).append(event["data"])
    (received,) = by_type["message.received"]
    assert received["message"]["message_id"] == "WHK1"
    assert received["message"]["body"] == "hello bot"
    assert sorted(m["message"]["source"] for m in by_type["message.sent"]) == ["api", "bot", "phone"]
    states = [s["session"]["state"] for s in by_type["session.status"]]
    assert "QR_READY" in states
    assert "CONNECTED" in states
    qr_ready = next(s for s in by_type["session.status"] if s["session"]["state"] == "QR_READY")
    assert qr_ready["qr"].startswith("data:image/png;base64,")
    connected = next(s for s in by_type["session.status"] if s["session"]["state"] == "CONNECTED")
    assert connected["session"]["phone"] == PHONE
    assert [w["worker"]["status"] for w in by_type["worker.status"]][:2] == ["STARTING", "RUNNING"]
    assert by_type["chat.paused"][0]["pause"]["chat"] == f"{CUSTOMER}@c.us"
    assert by_type["chat.resumed"][0]["pause"]["paused"] is False
    assert all(e["tenant_id"] == tenant.pk for events in by_type.values() for e in events)
