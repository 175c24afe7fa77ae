"""Exactly one reply when the worker is killed with SIGKILL before, during and right after a send.

The reply's key id is derived from the message it answers; after a restart the bot asks the page
for that key before it sends. The rate limit (one reply per 6 s) holds the reply back long enough
to place the kill: before (the reply is claimed and waits for its slot), during (the slot opens
while the service ignores the page, so the page holds the message unacknowledged), right after (the
customer has it, the log may not say so yet).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tenants import services
from tenants.messages import reply_message_id
from tenants.models import MessageLog
from tests.botkit import Sim, link, start_agent, wait_session
from tests.harness import wait_for
from tests.waits import wait_running, worker
from workers.bot.rate_limiter import rate_key

pytestmark = pytest.mark.integration
PHONE = "4915100000003"
CUSTOMER = "4917000000003"
WINDOW_MS = 6000
REPLY = "Noted, thank you!"


@pytest.fixture
def throttled(bot_fleet, sim: Sim, tenant):
    bot_fleet.env.update(RATE_LIMIT_WINDOW_MS=str(WINDOW_MS), BOT_RECONCILE_INTERVAL_MS="1000")
    services.tenant_update(tenant=tenant, rate_limit_per_minute=1)
    services.template_create(tenant=tenant, match="default", body=REPLY)
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    sim.message(PHONE, "FIRST", CUSTOMER, "hello")
    wait_for(lambda: sim.replies(PHONE, REPLY), 30, what="the first reply")  # the window's one slot is spent
    return tenant


def waiting(tenant_id: int) -> MessageLog:
    """The second message, its reply claimed and waiting for the rate limit."""
    return wait_for(lambda: MessageLog.objects.filter(tenant_id=tenant_id, message_id="SECOND",
                                                      status="rate_limited").first(), 20, what="SECOND waiting")


def window_opens_at(redis_client, tenant_id: int) -> float:
    """When the rate limit lets the next reply go (unix seconds, Redis's clock)."""
    ((_, slot_ms),) = redis_client.zrange(rate_key(tenant_id), 0, 0, withscores=True)
    return (slot_ms + WINDOW_MS) / 1000


def kill_worker(tenant_id: int) -> int:
    pid = worker(tenant_id).pid
    os.kill(pid, signal.SIGKILL)
    return pid


def exactly_one_reply(sim: Sim, tenant_id: int, killed: int, *, resent_by_the_page: bool = False) -> None:
    wait_running(tenant_id, not_pid=killed, timeout=60)
    wait_session(tenant_id, "CONNECTED", timeout=60)
    key = reply_message_id(tenant_id, "SECOND")
    wait_for(lambda: [m for m in sim.replies(PHONE, REPLY) if m["id"] == key], 60, what="the reply to SECOND")
    second = MessageLog.objects.get(tenant_id=tenant_id, message_id="SECOND", direction="in")
    wait_for(lambda: MessageLog.objects.get(pk=second.pk).status == "replied", 30, what="SECOND replied")
    time.sleep(WINDOW_MS / 1000 + 1)  # long enough for a second copy to have gone out
    replies = sim.replies(PHONE, REPLY)
    assert [m["id"] for m in replies] == [reply_message_id(tenant_id, "FIRST"), key], replies
    # The page had stored it: it went out as the page's own retry, and the restarted bot, finding
    # its key in the page, sent nothing itself.
    assert replies[1]["resent"] is resent_by_the_page, replies
    out = MessageLog.objects.get(tenant_id=tenant_id, message_id=key, direction="out")
    assert (out.status, out.in_reply_to) == ("sent", "SECOND")


def test_killed_before_the_send_the_customer_gets_one_reply(throttled, sim: Sim):
    sim.message(PHONE, "SECOND", CUSTOMER, "are you there?")
    waiting(throttled.pk)
    assert MessageLog.objects.filter(tenant=throttled, direction="out", in_reply_to="SECOND").exists()
    exactly_one_reply(sim, throttled.pk, kill_worker(throttled.pk))


def test_killed_during_the_send_the_customer_gets_one_reply(throttled, sim: Sim, redis_client):
    sim.message(PHONE, "SECOND", CUSTOMER, "are you there?")
    waiting(throttled.pk)
    opens = window_opens_at(redis_client, throttled.pk)
    time.sleep(max(0.0, opens - time.time() - 0.3))
    # From just before the slot opens, the service takes the page's frames but answers nothing:
    # the page stores the reply and sends it, and no acknowledgement comes back.
    sim.call("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 6000, "silent": True}, expect=200)
    time.sleep(max(0.0, opens - time.time() + 0.6))
    assert not [m for m in sim.replies(PHONE, REPLY) if m["id"] == reply_message_id(throttled.pk, "SECOND")]
    exactly_one_reply(sim, throttled.pk, kill_worker(throttled.pk), resent_by_the_page=True)


def test_killed_right_after_the_send_the_customer_gets_one_reply(throttled, sim: Sim):
    sim.message(PHONE, "SECOND", CUSTOMER, "are you there?")
    waiting(throttled.pk)
    key = reply_message_id(throttled.pk, "SECOND")
    wait_for(lambda: [m for m in sim.replies(PHONE, REPLY) if m["id"] == key], 30, interval=0.02,
             what="the reply in the outbox")
    exactly_one_reply(sim, throttled.pk, kill_worker(throttled.pk))
