"""Input that used to take a tenant down, against a real bot: each costs itself, never the worker.

- A template saved before the checks existed (100 catastrophically slow regexes) meets the text
  that makes them backtrack: those messages end `no_match`, other chats are answered at once.
- A queued send to a recipient no WhatsApp id can have (Arabic-Indic digits, from before `to` was
  checked as it is now) is marked failed, and the send behind it goes out.
- Incoming texts with a NUL or a lone surrogate are logged (made storable) and answered.
"""

from __future__ import annotations

import time

import pytest

from tenants import services
from tenants.messages import new_message_id
from tenants.models import MessageLog, ReplyTemplate
from tests.botkit import Sim, link, start_agent
from tests.harness import Fleet, wait_for
from tests.waits import worker
from workers.commands import send_text

pytestmark = pytest.mark.integration
PHONE = "4915100000041"
SLOW = r"(\d+)+$"
POISON = "1" * 3000 + "!"


def row(tenant_id: int, message_id: str) -> MessageLog | None:
    return MessageLog.objects.filter(tenant_id=tenant_id, message_id=message_id, direction="in").first()


def test_poison_templates_sends_and_texts_cost_only_themselves(bot_fleet: Fleet, sim: Sim, make_tenant):
    tenant = make_tenant("Poison", rate_limit_per_minute=1000)
    # As a database from before the checks could hold them: bulk-created, never validated.
    ReplyTemplate.objects.bulk_create(
        [ReplyTemplate(tenant=tenant, match="regex", pattern=SLOW, body="never") for _ in range(100)])
    services.template_create(tenant=tenant, match="exact", pattern="hello", body="hi there")
    services.template_create(tenant=tenant, match="default", body="got it")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    pid = worker(tenant.pk).pid

    for n in range(3):
        sim.message(PHONE, f"SLOW{n}", "4917000000411", POISON)
    started = time.monotonic()
    sim.message(PHONE, "HELLO", "4917000000412", "hello")
    wait_for(lambda: sim.replies(PHONE, "hi there"), 15, what="the other chat's reply")
    answered_in = time.monotonic() - started
    # The three poison texts fall through every regex (each out of time) to the default reply.
    wait_for(lambda: all(row(tenant.pk, f"SLOW{n}").status == "replied" for n in range(3)), 30,
             what="the poison texts answered by the default")
    assert len(sim.replies(PHONE, "got it")) == 3
    assert answered_in < 10, f"another chat waited {answered_in:.1f}s behind the slow templates"

    # A send queued before `to` was checked as it is now, and one behind it.
    stuck = MessageLog.objects.create(tenant=tenant, message_id=new_message_id(), chat="٤٩١٧٦١٢٣٤٥٦٧٨@c.us",
                                      direction="out", source="api", body="old", status="queued")
    behind = send_text(tenant=tenant, to="4917000000413", body="the next send")
    wait_for(lambda: MessageLog.objects.get(pk=behind.pk).status == "sent", 30, what="the next send")
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert "is not a chat WhatsApp can deliver to" in stuck.error
    assert [m["to"] for m in sim.replies(PHONE, "the next send")] == ["4917000000413"]
    assert not sim.replies(PHONE, "old")

    sim.message(PHONE, "NUL", "4917000000414", "hel\x00lo")
    sim.message(PHONE, "SURROGATE", "4917000000415", "bad \ud800 half")
    wait_for(lambda: (row(tenant.pk, "NUL") and row(tenant.pk, "NUL").status == "replied"
                      and row(tenant.pk, "SURROGATE") and row(tenant.pk, "SURROGATE").status == "replied"),
             30, what="the NUL and surrogate texts answered")
    assert row(tenant.pk, "NUL").body == "hello"
    assert "\ud800" not in row(tenant.pk, "SURROGATE").body
    assert row(tenant.pk, "SURROGATE").body.startswith("bad ")
    assert worker(tenant.pk).pid == pid  # one worker process all along
