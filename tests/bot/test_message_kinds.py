"""What a real WhatsApp account receives, one kind at a time, through the real bot: each test links a
tenant (real worker, real Chromium, the simulator) and asserts the reply, or its absence, and the
message log rows. The policy is tenants/policy.py; human takeover is tenants/takeover.py."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from tenants import services
from tenants.models import ChatPause, MessageLog
from tests.botkit import Sim, bot_log, link, start_agent
from tests.harness import wait_for

pytestmark = pytest.mark.integration
PHONE = "4915100000002"
CUSTOMER = "4917000000002"
LID = "215550000000042"
GROUP = "120363000000000042"
QUIET_S = 2.5  # how long a "no reply" must hold


def rows(tenant_id: int, **filters) -> list[MessageLog]:
    return list(MessageLog.objects.filter(tenant_id=tenant_id, **filters).order_by("id"))


def row(tenant_id: int, message_id: str, direction: str = "in") -> MessageLog:
    return MessageLog.objects.get(tenant_id=tenant_id, message_id=message_id, direction=direction)


def settled(tenant_id: int, message_id: str, status: str, timeout: float = 30) -> MessageLog:
    return wait_for(lambda: (r := row(tenant_id, message_id)).status == status and r, timeout,
                    what=f"{message_id} {status}")


def replied(sim: Sim, body: str, timeout: float = 30) -> dict:
    (entry,) = wait_for(lambda: sim.replies(PHONE, body), timeout, what=f"a reply {body!r}")
    return entry


@pytest.fixture
def linked(bot_fleet, sim: Sim, tenant):
    services.template_create(tenant=tenant, match="keyword", pattern="hours", body="Open 9-17, {number}.")
    services.template_create(tenant=tenant, match="keyword", pattern="price", body="From 10 EUR.")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    return tenant


def test_a_direct_message_is_answered_and_logged_both_ways(linked, sim: Sim):
    sim.send(PHONE, "dm", id="DM1", **{"from": CUSTOMER}, body="your hours?", name="Ada")
    entry = replied(sim, f"Open 9-17, {CUSTOMER}.")
    assert entry["chat"] == f"{CUSTOMER}@c.us"
    incoming = settled(linked.pk, "DM1", "replied")
    assert (incoming.chat, incoming.kind, incoming.source, incoming.body) == (
        f"{CUSTOMER}@c.us", "chat", "customer", "your hours?")
    reply = row(linked.pk, entry["id"], "out")
    assert (reply.status, reply.source, reply.in_reply_to) == ("sent", "bot", "DM1")
    assert len(sim.outbox(PHONE)) == 1


def test_a_lid_sender_is_answered_as_their_number_in_their_own_chat(linked, sim: Sim):
    sim.send(PHONE, "lid", id="LID1", **{"from": LID}, pn=CUSTOMER, body="hours please")
    entry = replied(sim, f"Open 9-17, {CUSTOMER}.")
    assert entry["chat"] == f"{LID}@lid", "the reply goes to the chat the person wrote from"
    incoming = settled(linked.pk, "LID1", "replied")
    assert incoming.chat == f"{CUSTOMER}@c.us", "one person, one chat: the LID is resolved to the number"
    # A LID the page cannot resolve stays a LID (and is still answered there).
    sim.send(PHONE, "lid", id="LID2", **{"from": "215550000000099"}, body="price?")
    assert replied(sim, "From 10 EUR.")["chat"] == "215550000000099@lid"
    assert settled(linked.pk, "LID2", "replied").chat == "215550000000099@lid"


def reloaded_with(fleet, tenant_id: int, fact: str) -> None:
    wait_for(lambda: any(fact in line for line in bot_log(fleet, tenant_id, "templates loaded")), 20,
             what=f"the bot reloading its settings ({fact})")


def test_groups_are_logged_not_answered_unless_the_tenant_answers_in_groups(linked, bot_fleet, sim: Sim, api):
    sim.send(PHONE, "group", id="G1", group=GROUP, **{"from": CUSTOMER}, body="hours?")
    ignored = settled(linked.pk, "G1", "ignored")
    assert (ignored.chat, ignored.author, ignored.kind) == (f"{GROUP}@g.us", f"{CUSTOMER}@c.us", "chat")
    assert "groups" in ignored.error
    assert api.patch(f"/api/admin/tenants/{linked.pk}", {"reply_in_groups": True}, format="json").json()[
        "reply_in_groups"] is True
    reloaded_with(bot_fleet, linked.pk, "groups=True")
    sim.send(PHONE, "group", id="G2", group=GROUP, **{"from": CUSTOMER}, body="hours?")
    entry = replied(sim, f"Open 9-17, {CUSTOMER}.")
    assert entry["chat"] == f"{GROUP}@g.us"
    assert settled(linked.pk, "G2", "replied").author == f"{CUSTOMER}@c.us"
    assert [m["id"] for m in sim.outbox(PHONE)] == [entry["id"]], "G1 was never answered"


def test_status_posts_channel_posts_and_reactions_are_neither_answered_nor_logged(linked, sim: Sim):
    sim.send(PHONE, "status", id="ST1", **{"from": CUSTOMER}, body="my hours at the gym")
    sim.send(PHONE, "newsletter", id="NL1", **{"from": "120363000000000077"}, body="new prices, hours")
    sim.message(PHONE, "DM2", CUSTOMER, "what about the price?")
    replied(sim, "From 10 EUR.")
    sim.send(PHONE, "reaction", ref="DM2", **{"from": CUSTOMER}, body="❤")
    sim.message(PHONE, "DM3", CUSTOMER, "hours?")
    replied(sim, f"Open 9-17, {CUSTOMER}.")  # came after all of the above, so they were handled by now
    assert len(sim.outbox(PHONE)) == 2
    assert {r.message_id for r in rows(linked.pk, direction="in")} == {"DM2", "DM3"}


def test_an_image_is_logged_with_its_caption_and_answered_by_it(linked, bot_fleet, sim: Sim, api):
    sim.send(PHONE, "image", id="IMG1", **{"from": CUSTOMER}, caption="price of this one?")
    replied(sim, "From 10 EUR.")
    image = settled(linked.pk, "IMG1", "replied")
    assert (image.kind, image.body) == ("image", "price of this one?")
    api.patch(f"/api/admin/tenants/{linked.pk}", {"reply_to_media": False}, format="json")
    reloaded_with(bot_fleet, linked.pk, "media=False")
    sim.send(PHONE, "image", id="IMG2", **{"from": CUSTOMER}, caption="and the price of that?")
    ignored = settled(linked.pk, "IMG2", "ignored")
    assert (ignored.kind, ignored.body) == ("image", "and the price of that?")
    assert len(sim.outbox(PHONE)) == 1


def test_a_ciphertext_is_answered_once_it_decrypts(linked, sim: Sim):
    sim.send(PHONE, "ciphertext", id="CT1", **{"from": CUSTOMER}, body="hours, please", decrypt_ms=1500)
    time.sleep(0.8)
    assert not rows(linked.pk, message_id="CT1"), "nothing is logged while it cannot be read"
    replied(sim, f"Open 9-17, {CUSTOMER}.")
    message = settled(linked.pk, "CT1", "replied")
    assert (message.kind, message.body) == ("chat", "hours, please")
    assert len(rows(linked.pk, direction="in")) == 1


@pytest.fixture
def throttled(bot_fleet, sim: Sim, tenant):
    """One reply per 6 s: the second message of a burst waits for the rate limit."""
    bot_fleet.env["RATE_LIMIT_WINDOW_MS"] = "6000"
    services.tenant_update(tenant=tenant, rate_limit_per_minute=1)
    services.template_create(tenant=tenant, match="default", body="Got it: thanks!")
    services.template_create(tenant=tenant, match="keyword", pattern="price", body="From 10 EUR.")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    sim.message(PHONE, "FIRST", CUSTOMER, "hello")
    replied(sim, "Got it: thanks!")  # the window's one reply is spent
    return tenant


def test_a_message_deleted_while_it_waits_is_not_answered(throttled, sim: Sim):
    sim.message(PHONE, "GONE", CUSTOMER, "hello again")
    settled(throttled.pk, "GONE", "rate_limited")
    sim.send(PHONE, "revoke", ref="GONE", **{"from": CUSTOMER})
    revoked = settled(throttled.pk, "GONE", "revoked")
    assert "deleted" in revoked.error
    (reply,) = wait_for(lambda: [r for r in rows(throttled.pk, direction="out", in_reply_to="GONE")
                                 if r.status == "dropped"], 20, what="the reply dropped")
    time.sleep(6.5)  # past the window: still nothing for GONE
    assert [m["body"] for m in sim.outbox(PHONE)] == ["Got it: thanks!"]


def test_a_waiting_message_that_is_edited_is_answered_by_its_new_text(throttled, sim: Sim):
    sim.message(PHONE, "EDIT1", CUSTOMER, "hello again")
    settled(throttled.pk, "EDIT1", "rate_limited")
    # The reply was already claimed for the old text; an edit before matching is what changes the answer.
    sim.message(PHONE, "EDIT2", CUSTOMER, "hi")
    sim.send(PHONE, "edit", ref="EDIT2", **{"from": CUSTOMER}, body="what is the price?")
    replied(sim, "From 10 EUR.", timeout=40)
    assert row(throttled.pk, "EDIT2").body == "what is the price?"
    assert [m["body"] for m in sim.outbox(PHONE)] == ["Got it: thanks!", "Got it: thanks!", "From 10 EUR."]


@pytest.fixture
def takeover(bot_fleet, sim: Sim, tenant):
    bot_fleet.env["HUMAN_TAKEOVER_MINUTES"] = "0.12"  # 7.2 s
    services.template_create(tenant=tenant, match="default", body="The bot answers: hello!")
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    return tenant


def test_the_owner_answering_from_the_phone_pauses_the_bot_in_that_chat_until_the_time_is_up(takeover, sim: Sim):
    sim.send(PHONE, "own", id="OWN1", to=CUSTOMER, body="Hi, Maria here, I'll help you myself")
    own = wait_for(lambda: rows(takeover.pk, message_id="OWN1"), 20, what="the owner's message logged")[0]
    assert (own.direction, own.source, own.status, own.chat) == ("out", "phone", "sent", f"{CUSTOMER}@c.us")
    pause = wait_for(lambda: ChatPause.objects.filter(tenant=takeover, chat=f"{CUSTOMER}@c.us").first(), 10)
    sim.message(PHONE, "DURING", CUSTOMER, "thanks Maria")
    quiet = settled(takeover.pk, "DURING", "ignored")
    assert "owner" in quiet.error
    # Another chat is not paused.
    sim.message(PHONE, "OTHER", "4917000000099", "hello")
    replied(sim, "The bot answers: hello!")
    # A second message from the owner renews the pause.
    sim.send(PHONE, "own", id="OWN2", to=CUSTOMER, body="anything else?")
    wait_for(lambda: ChatPause.objects.get(pk=pause.pk).paused_until > pause.paused_until, 10, what="renewed")
    until = ChatPause.objects.get(pk=pause.pk).paused_until.timestamp()
    time.sleep(max(0.0, until - time.time()) + 0.5)
    sim.message(PHONE, "AFTER", CUSTOMER, "one more question")
    settled(takeover.pk, "AFTER", "replied")
    assert [m["to"] for m in sim.outbox(PHONE)] == ["4917000000099", CUSTOMER]


def test_an_operator_or_the_portal_ends_a_takeover_and_the_bot_answers_again(takeover, sim: Sim, api, settings):
    services.membership_add(tenant=takeover, email="owner@example.com")
    sim.send(PHONE, "own", id="OWN3", to=CUSTOMER, body="I am on it")
    pause_url = f"/api/admin/tenants/{takeover.pk}/chats/{CUSTOMER}/pause"
    body = wait_for(lambda: (b := api.get(pause_url).json())["paused"] and b, 20, what="the pause")
    assert body["chat"] == f"{CUSTOMER}@c.us"
    assert body["reason"] == "the owner answered from the phone"
    assert [p["chat"] for p in api.get(f"/api/admin/tenants/{takeover.pk}/chats/paused").json()["results"]] == [
        f"{CUSTOMER}@c.us"]
    portal = {"HTTP_X_PORTAL_KEY": settings.PORTAL_INTERNAL_KEY, "HTTP_X_USER_EMAIL": "owner@example.com"}
    seen = APIClient().get(f"/api/portal/tenant/current/chats/{CUSTOMER}@c.us/pause", **portal).json()
    assert seen["paused"] is True
    ended = api.delete(pause_url).json()
    assert (ended["paused"], ended["paused_until"]) == (False, None)
    assert api.delete(pause_url).status_code == 200, "ending a pause is idempotent"
    sim.message(PHONE, "BACK", CUSTOMER, "hello?")
    replied(sim, "The bot answers: hello!")
    settled(takeover.pk, "BACK", "replied")
    # The portal ends the next one.
    sim.send(PHONE, "own", id="OWN4", to=CUSTOMER, body="me again")
    wait_for(lambda: api.get(pause_url).json()["paused"], 20, what="a new pause")
    assert APIClient().delete(f"/api/portal/tenant/current/chats/{CUSTOMER}/pause", **portal).json()["paused"] is False
    assert api.get(pause_url).json()["paused"] is False
