"""The memory guard: over BOT_BROWSER_RELOAD_MB the bot reloads WhatsApp Web, then restarts
Chromium on the same profile if that did not help, and loses or doubles no message on the way."""

from __future__ import annotations

import time

import psutil
import pytest

from tenants import services
from tenants.messages import reply_message_id
from tenants.models import MessageLog
from tests.botkit import Sim, bot_log, chromium_of, link, session, start_agent
from tests.harness import wait_for
from tests.waits import worker
from workers.bot.memory_guard import RELOAD, RESTART, MemoryGuard

PHONE = "4915100000022"
CUSTOMERS = ["4917000002200", "4917000002201", "4917000002202"]
REPLY = "Got it, thanks"
COUNT = 60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_reloads_then_restarts_then_backs_off_and_starts_over_once_under_the_limit():
    clock = Clock()
    guard = MemoryGuard(500, interval_s=10, clock=clock)
    assert guard.due(400) is None
    assert guard.due(600) == RELOAD
    guard.done(RELOAD)
    assert guard.due(550) == RESTART  # the reload did not bring it under
    guard.done(RESTART)
    assert guard.due(550) is None  # nor did the restart: the limit is below the page's floor
    clock.now += 79
    assert guard.due(550) is None
    clock.now += 2
    assert guard.due(550) == RELOAD
    guard.done(RELOAD)
    assert guard.due(300) is None  # that one helped
    assert guard.due(600) == RELOAD


def browser_of(tenant_id: int) -> int:
    """The tenant's browser process: the Chromium its worker started."""
    pid = worker(tenant_id).pid
    (root,) = [p for p in chromium_of(tenant_id) if psutil.Process(p).ppid() == pid]
    return root


@pytest.mark.integration
def test_over_the_limit_chromium_is_reloaded_and_restarted_and_every_message_is_answered_once(
    bot_fleet, sim: Sim, tenant
):
    bot_fleet.env.update(BOT_BROWSER_RELOAD_MB="1", BOT_BROWSER_MEMORY_CHECK_MS="1000")
    services.tenant_update(tenant=tenant, rate_limit_per_minute=10_000)
    services.template_create(tenant=tenant, match="default", body=REPLY)
    start_agent(bot_fleet)
    linked = link(tenant.pk, sim, PHONE)
    worker_pid, first_browser = worker(tenant.pk).pid, browser_of(tenant.pk)

    waited = []  # messages the page was not there to take: they arrived during a reload or restart
    for n in range(COUNT):
        answer = sim.call("POST", f"/_sim/phones/{PHONE}/messages",
                          {"id": f"MG{n}", "from": CUSTOMERS[n % 3], "body": f"hello {n}"}, expect=202)
        if answer["queued"]:
            waited.append(n)
        time.sleep(0.25)

    expected = {reply_message_id(tenant.pk, f"MG{n}") for n in range(COUNT)}
    wait_for(lambda: {m["id"] for m in sim.replies(PHONE, REPLY)} >= expected, 90, what="every reply")
    wait_for(lambda: MessageLog.objects.filter(tenant=tenant, direction="in", status="replied").count() == COUNT,
             30, what="every message replied in the log")
    time.sleep(3)  # long enough for a second copy to have gone out
    replies = [m["id"] for m in sim.replies(PHONE, REPLY)]
    assert sorted(replies) == sorted(expected), "each message answered exactly once"
    for customer in CUSTOMERS:  # and in order, chat by chat
        sent = [m["id"] for m in sim.outbox(PHONE) if m["to"] == customer]
        asked = [reply_message_id(tenant.pk, f"MG{n}") for n in range(COUNT) if CUSTOMERS[n % 3] == customer]
        assert sent == asked

    over = bot_log(bot_fleet, tenant.pk, "Chromium over its memory limit")
    assert any(f"action={RELOAD}" in line for line in over), over
    assert any(f"action={RESTART}" in line for line in over), over
    back = bot_log(bot_fleet, tenant.pk, "Chromium refreshed for memory")
    assert back, over
    assert all("back=True" in line for line in back), back
    assert waited, "some messages arrived while the page was reloading or the browser restarting"

    # The same worker, a new browser on the same profile, still linked: no new QR code was needed.
    assert worker(tenant.pk).pid == worker_pid
    assert browser_of(tenant.pk) != first_browser
    now = session(tenant.pk)
    assert (now.state, now.qr_count) == ("CONNECTED", linked.qr_count)
