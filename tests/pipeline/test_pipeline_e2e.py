"""The message pipeline end to end against the simulator: exactly-once replies, order, rate limit."""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import datetime

import pytest
from django.urls import reverse

from tenants import services
from tenants.messages import reply_message_id
from tenants.models import Direction, MessageLog, MessageStatus
from tests.botkit import Sim, bot_log, link, start_agent, worker
from tests.harness import Fleet, wait_for
from workers import lifecycle

pytestmark = pytest.mark.integration
PHONE = "4915100000001"


def templates_loaded(fleet: Fleet, tenant_id: int) -> int:
    """How many times the tenant's bot has loaded its templates."""
    return len(bot_log(fleet, tenant_id, "templates loaded"))


def wait_reloaded(fleet: Fleet, tenant_id: int, after: int) -> None:
    wait_for(lambda: templates_loaded(fleet, tenant_id) > after, 20, what="the bot to reload its templates")


def replies_to(sim: Sim, count: int, timeout: float) -> list[dict]:
    return wait_for(lambda: (box := sim.outbox(PHONE)) and len(box) >= count and box, timeout,
                    what=f"{count} replies in the outbox")


def test_200_messages_with_duplicates_and_kills_get_exactly_one_reply_each_in_order(bot_fleet, sim: Sim, tenant):
    services.tenant_update(tenant=tenant, rate_limit_per_minute=10_000)
    services.template_create(tenant=tenant, match="default", body="Thanks {number}, noted.")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    chats = [f"4917000000{i:03d}" for i in range(10)]
    rng = random.Random(7)
    plan = [(f"MSG{n:03d}", rng.choice(chats)) for n in range(200)]
    kills = 0
    for n, (message_id, chat) in enumerate(plan):
        sim.message(PHONE, message_id, chat, f"message {n}")
        if n % 5 == 0:
            sim.message(PHONE, message_id, chat, f"message {n}")  # WhatsApp's duplicate event
        if n in (60, 140):
            os.kill(worker(tenant.pk).pid, signal.SIGKILL)  # more arrive while it restarts
            kills += 1
        time.sleep(0.02)
    assert kills == 2

    replies_to(sim, 200, timeout=150)
    time.sleep(3)  # anything doubled would show up by now
    outbox = sim.outbox(PHONE)
    ids = [m["id"] for m in outbox]
    assert len(ids) == len(set(ids)) == 200, "no reply sent twice, none lost"
    expected = {reply_message_id(tenant.pk, message_id) for message_id, _ in plan}
    assert set(ids) == expected
    for chat in chats:
        assert [m["id"] for m in outbox if m["to"] == chat] == [
            reply_message_id(tenant.pk, message_id) for message_id, c in plan if c == chat
        ], f"replies in chat {chat} out of order"
    incoming = MessageLog.objects.filter(tenant=tenant, direction=Direction.IN)
    assert incoming.count() == 200
    wait_for(lambda: set(incoming.values_list("status", flat=True)) == {MessageStatus.REPLIED}, 10,
             what="every message logged as replied")
    assert MessageLog.objects.filter(tenant=tenant, direction=Direction.OUT).count() == 200
    assert MessageLog.objects.filter(tenant=tenant, direction=Direction.OUT, status=MessageStatus.SENT).count() == 200


def test_the_rate_limit_holds_over_a_burst_and_nothing_is_dropped(bot_fleet, sim: Sim, tenant):
    window_ms, limit = 3000, 3
    bot_fleet.env["RATE_LIMIT_WINDOW_MS"] = str(window_ms)
    services.tenant_update(tenant=tenant, rate_limit_per_minute=limit)
    services.template_create(tenant=tenant, match="default", body="ok")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    for n in range(3 * limit):
        sim.message(PHONE, f"B{n}", f"491700000{n % 3:04d}", "burst")
    seen_waiting = wait_for(
        lambda: MessageLog.objects.filter(tenant=tenant, status=MessageStatus.RATE_LIMITED).exists(), 10,
        interval=0.05, what="a reply waiting for the rate limit")
    assert seen_waiting
    outbox = replies_to(sim, 3 * limit, timeout=30)
    sent = sorted(datetime.fromisoformat(m["sent_at"].replace("Z", "+00:00")) for m in outbox)
    assert len(sent) == 3 * limit
    for first, later in zip(sent, sent[limit:], strict=False):
        assert (later - first).total_seconds() * 1000 >= window_ms - 50, "more than the limit within one window"
    wait_for(lambda: set(MessageLog.objects.filter(tenant=tenant, direction=Direction.IN).values_list(
        "status", flat=True)) == {MessageStatus.REPLIED}, 10, what="every message logged as replied")


def test_a_template_edited_through_the_api_or_the_admin_changes_the_next_reply_without_a_restart(
    bot_fleet, sim: Sim, tenant, api, admin_client
):
    created = api.post(f"/api/admin/tenants/{tenant.pk}/templates",
                       {"match": "keyword", "pattern": "hours", "body": "Open 9-5"}, format="json")
    assert created.status_code == 201
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    pid = worker(tenant.pk).pid
    sim.message(PHONE, "T1", "4917000000001", "what are your hours?")
    assert replies_to(sim, 1, 20)[-1]["body"] == "Open 9-5"
    loaded = templates_loaded(bot_fleet, tenant.pk)
    edited = api.patch(f"/api/admin/tenants/{tenant.pk}/templates/{created.json()['id']}", {"body": "Open 8-6"},
                       format="json")
    assert edited.status_code == 200
    wait_reloaded(bot_fleet, tenant.pk, loaded)
    sim.message(PHONE, "T2", "4917000000001", "hours on sunday?")
    assert replies_to(sim, 2, 20)[-1]["body"] == "Open 8-6"

    change = reverse("admin:tenants_replytemplate_change", args=[created.json()["id"]])
    form = admin_client.get(change).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(enabled="on", body="Open 7-7, {name}")
    loaded = templates_loaded(bot_fleet, tenant.pk)
    assert admin_client.post(change, data).status_code == 302
    wait_reloaded(bot_fleet, tenant.pk, loaded)
    sim.message(PHONE, "T3", "4917000000001", "hours today?")
    assert replies_to(sim, 3, 20)[-1]["body"].startswith("Open 7-7, ")
    assert worker(tenant.pk).pid == pid


def test_messages_that_arrive_while_the_worker_is_stopped_are_answered_when_it_is_back(bot_fleet, sim: Sim, tenant):
    services.template_create(tenant=tenant, match="default", body="back")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    lifecycle.worker_stop(tenant_id=tenant.pk)
    wait_for(lambda: worker(tenant.pk).status == "STOPPED", 30, what="stopped")
    for n in range(3):
        sim.message(PHONE, f"W{n}", "4917000000002", f"while down {n}")
    time.sleep(1)
    assert sim.outbox(PHONE) == []
    lifecycle.worker_start(tenant_id=tenant.pk)
    outbox = replies_to(sim, 3, 60)
    assert [m["id"] for m in outbox] == [reply_message_id(tenant.pk, f"W{n}") for n in range(3)]
