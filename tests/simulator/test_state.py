"""The simulated service's rules, without sockets or browsers: a fake clock and counters for refs
and message ids make every outcome exact."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from simulator.kinds import KINDS, THUMBNAIL, Incoming, KindError, lid_of, parse, wire
from simulator.state import (
    DEVICE_PLATFORM,
    MAX_COMPANIONS,
    MAX_REMEMBERED_REFS,
    QR_REFS_PER_BATCH,
    Close,
    DeviceKeys,
    Send,
    SimError,
    SimState,
    iso_utc,
)

ROTATE_MS = 1000
PHONE = "15550001111"
CUSTOMER = "15559990000"
GROUP = "120363000000000001"
KEYS = DeviceKeys("bm9pc2Vub2lzZW5vaXNl", "aWRlbnRpdHlpZGVudGl0eQ==", "YWR2YWR2YWR2YWR2YWR2")
T = 1_700_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T * 1000

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock) -> SimState:
    refs = (f"2@ref{n}" for n in itertools.count(1))
    ids = (f"3EB0{n:04d}" for n in itertools.count(1))
    return SimState(
        qr_rotate_ms=ROTATE_MS, clock=clock, new_ref=lambda: next(refs), new_message_id=lambda: next(ids)
    )


def frames(effects, device="dev-a") -> list[dict]:
    return [e.message for e in effects if isinstance(e, Send) and e.device == device]


def payload(ref: str, keys: DeviceKeys = KEYS, platform: str = DEVICE_PLATFORM) -> str:
    """The QR payload as whatsapp-web.js builds it: ref, static key, identity key, ADV secret, platform."""
    return f"{ref},{keys.noise},{keys.identity},{keys.adv},{platform}"


def dm(sim: SimState, id_: str, body: str = "x", name: str = "", phone: str = PHONE):
    return sim.post_message(phone, "dm", {"id": id_, "from": CUSTOMER, "body": body, "name": name})


def linked(sim: SimState, device: str = "dev-a", phone: str = PHONE) -> None:
    """Open an unlinked page, scan it, and say hello again as the linked page does."""
    ref = frames(sim.connect(device, KEYS, None), device)[-1]["ref"]
    sim.scan(payload(ref), phone)
    sim.connect(device, KEYS, phone)


def entry(kind: str, **fields) -> Incoming:
    """A queued message of `kind` as the service would push it (validated like the control API)."""
    id_ = fields.pop("id", "M1")
    return Incoming(1, kind, id_, parse(kind, fields), T)


def test_an_unlinked_page_gets_a_ref_and_the_device_list_shows_the_full_payload(sim):
    assert frames(sim.connect("dev-a", KEYS, None)) == [{"type": "ref", "ref": "2@ref1"}]
    (device,) = sim.devices()
    assert device == {
        "device": "dev-a",
        "phone": None,
        "online": True,
        "state": None,
        "ref": "2@ref1",
        "qr": payload("2@ref1"),
        "name": "dev-a",
    }
    assert device["qr"].split(",")[-1] == "1", "the fifth field is the platform, Chrome"
    sim.report_state("dev-a", "UNPAIRED")
    assert sim.devices()[0]["state"] == "UNPAIRED"


def test_refs_rotate_when_due_until_the_batch_runs_out_and_then_the_page_idles(sim, clock):
    sim.connect("dev-a", KEYS, None)
    clock.advance(ROTATE_MS - 1)
    assert sim.tick() == []
    shown = []
    for _ in range(QR_REFS_PER_BATCH + 3):
        clock.advance(ROTATE_MS)
        shown += frames(sim.tick())
    assert shown == [{"type": "ref", "ref": f"2@ref{n}"} for n in range(2, QR_REFS_PER_BATCH + 1)] + [
        {"type": "idle"}
    ], "the last ref of a batch lives its full time, then the page goes UNPAIRED_IDLE"
    assert sim.devices()[0]["ref"] is None
    assert sim.devices()[0]["qr"] is None
    with pytest.raises(SimError) as caught:
        sim.scan(payload(f"2@ref{QR_REFS_PER_BATCH}"), PHONE)
    assert caught.value.status == 410, "the idle page's last ref is expired"


def test_refresh_qr_on_an_idle_page_starts_a_new_batch(clock):
    refs = (f"2@ref{n}" for n in itertools.count(1))
    sim = SimState(qr_rotate_ms=ROTATE_MS, qr_refs_per_batch=2, clock=clock, new_ref=lambda: next(refs))
    assert sim.refresh_qr("dev-a") == [], "an unknown device asks for nothing"
    sim.connect("dev-a", KEYS, None)
    assert sim.refresh_qr("dev-a") == [], "a page still showing a ref gets no new batch"
    shown = []
    for _ in range(3):
        clock.advance(ROTATE_MS)
        shown += frames(sim.tick())
    assert shown == [{"type": "ref", "ref": "2@ref2"}, {"type": "idle"}]
    assert frames(sim.refresh_qr("dev-a")) == [{"type": "ref", "ref": "2@ref3"}]
    clock.advance(ROTATE_MS)
    assert frames(sim.tick()) == [{"type": "ref", "ref": "2@ref4"}], "the new batch has its full count"
    clock.advance(ROTATE_MS)
    assert frames(sim.tick()) == [{"type": "idle"}]
    assert frames(sim.refresh_qr("dev-a")) == [{"type": "ref", "ref": "2@ref5"}]
    device, _ = sim.scan(payload("2@ref5"), PHONE)
    assert device == "dev-a"
    assert sim.refresh_qr("dev-a") == [], "a linked device shows no QR"


def test_a_scan_of_the_current_ref_pairs_the_page_and_its_hello_connects_and_syncs_it(sim):
    sim.connect("dev-a", KEYS, None)
    device, effects = sim.scan(payload("2@ref1"), PHONE, "Shop")
    assert device == "dev-a"
    assert frames(effects) == [{"type": "paired", "wid": PHONE, "pushname": "Shop"}]
    assert sim.devices()[0]["qr"] is None
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [
        {"type": "connected", "wid": PHONE, "lid": lid_of(PHONE), "pushname": "Shop", "platform": "android"},
        {"type": "synced"},
    ]
    assert sim.phones() == [
        {"phone": PHONE, "lid": lid_of(PHONE), "device": "dev-a", "pushname": "Shop", "online": True,
         "devices": [{"device": "dev-a", "name": "dev-a", "online": True}], "queued": 0, "outbox": 0}
    ]


@pytest.mark.parametrize(
    ("qr", "status"),
    [
        ("2@ref1", 400),  # not the five-field payload
        (f"2@ref1,{KEYS.noise},{KEYS.identity},{KEYS.adv}", 400),  # the old four-field payload
        (f"2@ref1,,{KEYS.identity},{KEYS.adv},1", 400),  # an empty field
        (payload("2@ref1") + ",1", 400),  # six fields
        (payload("2@ref1", platform="2"), 400),  # another platform than the page shows
        (payload("2@ref1", DeviceKeys("b3RoZXJvdGhlcm90aGVy", KEYS.identity, KEYS.adv)), 400),  # someone else's keys
        (payload("2@ref1", DeviceKeys(KEYS.noise, KEYS.identity, "b3RoZXJvdGhlcm90aGVy")), 400),
        (payload("2@never"), 404),
    ],
)
def test_a_scan_that_does_not_match_a_shown_qr_is_refused(sim, qr, status):
    sim.connect("dev-a", KEYS, None)
    with pytest.raises(SimError) as caught:
        sim.scan(qr, PHONE)
    assert caught.value.status == status
    assert sim.devices()[0]["phone"] is None


def test_a_rotated_ref_is_expired_and_so_is_the_ref_of_a_page_that_went_away(sim, clock):
    sim.connect("dev-a", KEYS, None)
    clock.advance(ROTATE_MS)
    sim.tick()
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@ref1"), PHONE)
    assert caught.value.status == 410
    sim.disconnect("dev-a")
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@ref2"), PHONE)
    assert caught.value.status == 410
    assert sim.devices() == [], "an unlinked page that went away is forgotten"


def test_expired_refs_are_remembered_only_up_to_a_bound(clock):
    refs = (f"2@r{n}" for n in itertools.count())
    sim = SimState(qr_rotate_ms=1, qr_refs_per_batch=MAX_REMEMBERED_REFS + 10, clock=clock,
                   new_ref=lambda: next(refs))
    sim.connect("dev-a", KEYS, None)
    for _ in range(MAX_REMEMBERED_REFS + 5):
        clock.advance(1)
        sim.tick()
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@r0"), PHONE)
    assert caught.value.status == 404
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@r10"), PHONE)
    assert caught.value.status == 410


def test_the_phone_must_be_digits(sim):
    sim.connect("dev-a", KEYS, None)
    for bad in ("+1 555", "1234", "1" * 21):
        with pytest.raises(SimError) as caught:
            sim.scan(payload("2@ref1"), bad)
        assert caught.value.status == 400
        with pytest.raises(SimError) as caught:
            dm(sim, "M1", phone=bad)
        assert caught.value.status == 400


def test_messages_wait_in_order_until_the_linked_page_connects_and_leave_only_when_acknowledged(sim):
    for n in (1, 2):
        queued, effects = dm(sim, f"M{n}", f"#{n}", "Ann")
        assert (queued, effects) == (True, [])
    ref = frames(sim.connect("dev-a", KEYS, None))[-1]["ref"]
    sim.scan(payload(ref), PHONE)
    connected, first, second, synced = frames(sim.connect("dev-a", KEYS, PHONE))
    assert connected["type"] == "connected"
    assert synced == {"type": "synced"}, "the page has synced once the offline messages are out"
    assert first == {
        "type": "msg",
        "seq": first["seq"],
        "op": "add",
        "msg": {
            "key": {"fromMe": False, "remote": f"{CUSTOMER}@c.us", "id": "M1"},
            "type": "chat",
            "body": "#1",
            "t": T,
            "notifyName": "Ann",
            "from": f"{CUSTOMER}@c.us",
            "to": f"{PHONE}@c.us",
        },
        "contacts": [],
    }
    assert second["msg"]["key"]["id"] == "M2"
    assert second["seq"] > first["seq"]
    assert sim.tick() == [], "what is in flight is not pushed twice"

    sim.acknowledge("dev-a", first["seq"])
    sim.disconnect("dev-a")  # the page reloads before acknowledging M2
    again = frames(sim.connect("dev-a", KEYS, PHONE))
    assert [f["type"] for f in again] == ["connected", "msg", "synced"]
    assert again[1]["msg"]["key"]["id"] == "M2"
    assert sim.phones()[0]["queued"] == 1


def test_an_acknowledgement_of_nothing_queued_changes_nothing(sim):
    linked(sim)
    before = sim.revision
    sim.acknowledge("dev-a", 999)
    sim.acknowledge("dev-unknown", 1)
    assert sim.revision == before


def test_a_message_to_a_connected_page_is_pushed_at_once_and_a_duplicate_id_twice(sim):
    linked(sim)
    for _ in range(2):
        queued, effects = dm(sim, "DUP")
        assert queued is False
        assert [f["msg"]["key"]["id"] for f in frames(effects)] == ["DUP"]
    assert sim.phones()[0]["queued"] == 2, "each stays queued until the page acknowledges it"


def test_sending_needs_a_connected_linked_device_and_fills_the_outbox(sim, clock):
    sim.connect("dev-a", KEYS, None)
    with pytest.raises(SimError) as caught:
        sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "hi")
    assert caught.value.status == 409
    with pytest.raises(SimError):
        sim.record_send("dev-unknown", "3EB0AAAA", f"{CUSTOMER}@c.us", "hi")
    sim.scan(payload("2@ref1"), PHONE)
    with pytest.raises(SimError) as caught:
        sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "hi")
    assert caught.value.status == 409, "paired is not connected yet"
    sim.connect("dev-a", KEYS, PHONE)
    sent = sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "hi")
    assert sent.id == "3EB0AAAA"
    assert [s.to_json() for s in sim.outbox(PHONE)] == [
        {"id": "3EB0AAAA", "to": CUSTOMER, "chat": f"{CUSTOMER}@c.us", "body": "hi", "sent_at": iso_utc(clock.ms),
         "resent": False}
    ]
    assert sim.phones()[0]["outbox"] == 1
    sim.clear_outbox(PHONE)
    assert sim.outbox(PHONE) == []


@pytest.mark.parametrize(
    "chat", [f"{CUSTOMER}@lid", f"{GROUP}@g.us", "120363999999999999@newsletter", "status@broadcast"]
)
def test_a_page_may_send_to_every_kind_of_chat(sim, chat):
    linked(sim)
    sent = sim.record_send("dev-a", "3EB0AAAA", chat, "hi")
    assert (sent.chat, sent.to) == (chat, chat.split("@")[0])


@pytest.mark.parametrize(
    ("key_id", "chat"),
    [
        ("bad id!", f"{CUSTOMER}@c.us"),
        ("has_underscore", f"{CUSTOMER}@c.us"),
        ("", f"{CUSTOMER}@c.us"),
        ("3EB0AAAA", CUSTOMER),
        ("3EB0AAAA", "ann@c.us"),
        ("3EB0AAAA", f"{CUSTOMER}@s.whatsapp.net"),
    ],
)
def test_a_send_with_a_bad_key_id_or_chat_is_refused(sim, key_id, chat):
    linked(sim)
    with pytest.raises(SimError) as caught:
        sim.record_send("dev-a", key_id, chat, "hi")
    assert caught.value.status == 400
    assert sim.outbox(PHONE) == []


def test_every_send_is_delivered_and_only_the_pages_own_resend_is_recognised_by_its_id(sim, clock):
    linked(sim)
    chat = f"{CUSTOMER}@c.us"
    first = sim.record_send("dev-a", "3EB0AAAA", chat, "hello")
    clock.advance(10)
    twice = sim.record_send("dev-a", "3EB0AAAA", chat, "hello")
    assert twice != first, "the same id sent twice reaches the customer twice"
    clock.advance(10)
    retried = sim.record_send("dev-a", "3EB0AAAA", chat, "hello", resend=True)
    assert retried == first, "a retry of a message the page never saw acknowledged is not sent again"
    fresh = sim.record_send("dev-a", "3EB0BBBB", chat, "new", resend=True)
    assert [(s.id, s.sent_at_ms) for s in sim.outbox(PHONE)] == [
        ("3EB0AAAA", first.sent_at_ms), ("3EB0AAAA", first.sent_at_ms + 10), ("3EB0BBBB", fresh.sent_at_ms)
    ], "a resend the service never got is delivered"
    assert [s.resent for s in sim.outbox(PHONE)][-1] is True, "and marked as the page's own retry"


def test_iso_utc_has_milliseconds_and_a_z():
    assert iso_utc(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


def test_an_unknown_phone_is_a_404(sim):
    for call in (
        lambda: sim.outbox(PHONE),
        lambda: sim.clear_outbox(PHONE),
        lambda: sim.logout(PHONE),
        lambda: sim.drop(PHONE, 10, silent=False),
    ):
        with pytest.raises(SimError) as caught:
            call()
        assert caught.value.status == 404


def test_a_phone_without_a_linked_device_cannot_be_dropped_or_logged_out(sim):
    dm(sim, "M1")
    for call in (lambda: sim.logout(PHONE), lambda: sim.drop(PHONE, 10, silent=True)):
        with pytest.raises(SimError) as caught:
            call()
        assert caught.value.status == 404
    assert sim.outbox(PHONE) == [], "a phone that got a message is known, with an empty outbox"


def test_a_loud_drop_closes_the_socket_and_refuses_the_device_until_it_ends(sim, clock):
    linked(sim)
    assert sim.drop(PHONE, 3000, silent=False) == [Close("dev-a")]
    sim.disconnect("dev-a")
    assert sim.is_refused("dev-a")
    assert sim.drop(PHONE, 3000, silent=False) == [], "an offline device has no socket to close"
    clock.advance(3000)
    assert not sim.is_refused("dev-a")
    assert frames(sim.connect("dev-a", KEYS, PHONE))[0]["type"] == "connected"


def test_a_silent_drop_keeps_the_socket_but_sends_nothing_until_it_ends(sim, clock):
    linked(sim)
    assert sim.drop(PHONE, 3000, silent=True) == []
    assert sim.is_silenced("dev-a")
    assert not sim.is_refused("dev-a")
    queued, effects = dm(sim, "M1")
    assert (queued, effects) == (True, [])
    assert sim.tick() == []
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [], "a hello during the silence gets no answer"
    clock.advance(3000)
    assert not sim.is_silenced("dev-a")
    assert [f["msg"]["key"]["id"] for f in frames(sim.tick())] == ["M1"], (
        "held-back messages flow again on the same socket"
    )


def test_logout_of_an_online_page_tells_it_and_its_reload_shows_a_new_qr(sim):
    linked(sim)
    assert frames(sim.logout(PHONE)) == [{"type": "logout"}], "the page clears its storage and reloads"
    assert sim.devices()[0]["phone"] is None
    assert sim.phones()[0]["device"] is None
    sim.disconnect("dev-a")
    assert frames(sim.connect("dev-a", KEYS, None)) == [{"type": "ref", "ref": "2@ref2"}]


def test_logout_of_an_offline_page_is_told_at_its_next_connect(sim):
    linked(sim)
    sim.disconnect("dev-a")
    assert sim.logout(PHONE) == []
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [{"type": "logout"}]
    sim.disconnect("dev-a")
    assert frames(sim.connect("dev-a", KEYS, None)) == [{"type": "ref", "ref": "2@ref2"}]


def test_the_page_logging_itself_out_unlinks_the_device(sim):
    linked(sim)
    sim.page_logout("dev-a")
    assert sim.phones()[0]["device"] is None
    assert sim.devices()[0]["phone"] is None
    sim.page_logout("dev-a")
    sim.page_logout("dev-unknown")
    with pytest.raises(SimError) as caught:
        sim.logout(PHONE)
    assert caught.value.status == 404


def test_a_page_that_forgot_its_link_is_unlinked(sim):
    linked(sim)
    sim.disconnect("dev-a")
    assert frames(sim.connect("dev-a", KEYS, None)) == [{"type": "ref", "ref": "2@ref2"}]
    assert sim.phones()[0]["device"] is None


def test_a_page_claiming_a_link_the_service_does_not_know_is_logged_out(sim):
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [{"type": "logout"}]
    assert sim.phones() == []


def test_a_second_device_linked_to_the_same_phone_keeps_the_first_linked(sim):
    linked(sim, "dev-a")
    ref = frames(sim.connect("dev-b", KEYS, None), "dev-b")[-1]["ref"]
    device, effects = sim.scan(payload(ref), PHONE)
    assert device == "dev-b"
    assert frames(effects, "dev-a") == [], "linking one device never unlinks another"
    assert [f["type"] for f in frames(effects, "dev-b")] == ["paired"]
    sim.connect("dev-b", KEYS, PHONE)
    assert {d["device"]: d["phone"] for d in sim.devices()} == {"dev-a": PHONE, "dev-b": PHONE}
    assert [d["device"] for d in sim.phones()[0]["devices"]] == ["dev-a", "dev-b"]


def test_every_linked_device_gets_every_message_and_it_leaves_when_all_have_stored_it(sim):
    linked(sim, "dev-a")
    linked(sim, "dev-b")
    _, effects = dm(sim, "M1")
    to_a, to_b = frames(effects, "dev-a"), frames(effects, "dev-b")
    assert [f["msg"]["key"]["id"] for f in to_a + to_b] == ["M1", "M1"]
    sim.acknowledge("dev-a", to_a[0]["seq"])
    assert sim.phones()[0]["queued"] == 1, "dev-b has not stored it yet"
    sim.disconnect("dev-b")
    assert [f["msg"]["key"]["id"] for f in frames(sim.connect("dev-b", KEYS, PHONE), "dev-b")[1:-1]] == ["M1"]
    sim.acknowledge("dev-b", to_b[0]["seq"])
    assert sim.phones()[0]["queued"] == 0


def test_each_device_sends_on_its_own_and_the_outbox_names_it(sim):
    linked(sim, "dev-a")
    linked(sim, "dev-b")
    sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "from a")
    sim.record_send("dev-b", "3EB0BBBB", f"{CUSTOMER}@c.us", "from b")
    assert [(m["device"], m["body"]) for m in sim.conversation(PHONE)] == [("dev-a", "from a"), ("dev-b", "from b")]


def test_logging_out_one_device_keeps_the_others(sim):
    linked(sim, "dev-a")
    linked(sim, "dev-b")
    _, effects = dm(sim, "M1")
    assert frames(sim.logout(PHONE, "dev-a"), "dev-a") == [{"type": "logout"}]
    assert {d["device"]: d["phone"] for d in sim.devices()} == {"dev-a": None, "dev-b": PHONE}
    sim.acknowledge("dev-b", frames(effects, "dev-b")[0]["seq"])
    assert sim.phones()[0]["queued"] == 0, "stored by every device still linked"
    sim.page_logout("dev-b")
    assert sim.phones()[0]["devices"] == []
    with pytest.raises(SimError) as caught:
        sim.logout(PHONE, "dev-b")
    assert caught.value.status == 404


def test_a_phone_links_at_most_four_companion_devices(sim):
    for n in range(MAX_COMPANIONS):
        linked(sim, f"dev-{n}")
    ref = frames(sim.connect("dev-x", KEYS, None), "dev-x")[-1]["ref"]
    with pytest.raises(SimError) as caught:
        sim.scan(payload(ref), PHONE)
    assert caught.value.status == 409
    assert "4 linked devices" in caught.value.message


def test_a_device_is_named_by_what_its_page_announced_after_pairing(sim):
    ref = frames(sim.connect("dev-a", KEYS, None))[-1]["ref"]
    sim.scan(payload(ref), PHONE)
    sim.connect("dev-a", KEYS, PHONE, {"name": "FlowHQ", "os": "Demo Café"})
    sim.disconnect("dev-a")
    sim.connect("dev-a", KEYS, PHONE, {"name": "Chrome", "os": "Linux"})
    assert sim.devices()[0]["name"] == "FlowHQ (Demo Café)", "the name registered at pairing is kept"
    assert sim.phones()[0]["devices"][0]["name"] == "FlowHQ (Demo Café)"


def test_the_conversation_shows_what_the_customer_wrote_before_each_reply(sim, clock):
    linked(sim)
    dm(sim, "M1", "menu")
    sim.post_message(PHONE, "dm", {"id": "M2", "from": "4917000000999", "body": "other chat", "name": ""})
    sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "Today: espresso")
    sim.record_send("dev-a", "3EB0BBBB", "4917000000777@c.us", "unprompted")
    first, second = sim.conversation(PHONE)
    assert (first["body"], first["wrote"]["body"]) == ("Today: espresso", "menu")
    assert second["wrote"] is None


def test_reset_forgets_everything_and_closes_open_sockets(sim):
    linked(sim)
    dm(sim, "M1")
    assert sim.reset() == [Close("dev-a")]
    assert sim.devices() == []
    assert sim.phones() == []


def test_a_snapshot_keeps_links_queues_and_outboxes_but_not_sockets(sim, clock):
    linked(sim)
    sim.record_send("dev-a", "3EB0AAAA", f"{GROUP}@g.us", "hi")
    sim.disconnect("dev-a")
    sim.post_message(PHONE, "group", {"id": "M1", "group": GROUP, "from": CUSTOMER, "body": "queued"})
    data = json.loads(json.dumps(sim.snapshot()))
    assert data["version"] == 3

    restored = SimState(qr_rotate_ms=ROTATE_MS, clock=clock)
    restored.restore(data)
    assert restored.devices()[0] == {
        "device": "dev-a",
        "phone": PHONE,
        "online": False,
        "state": None,
        "ref": None,
        "qr": None,
        "name": "dev-a",
    }
    assert [(s.chat, s.body) for s in restored.outbox(PHONE)] == [(f"{GROUP}@g.us", "hi")]
    connected, message, _synced = frames(restored.connect("dev-a", KEYS, PHONE))
    assert connected["type"] == "connected"
    assert message["msg"]["key"] == {"fromMe": False, "remote": f"{GROUP}@g.us", "id": "M1",
                                     "participant": f"{CUSTOMER}@c.us"}, "the kind survives a restart"
    _, effects = dm(restored, "M2")
    assert frames(effects)[0]["seq"] > message["seq"]


def test_a_snapshot_of_version_1_restores_as_direct_messages(clock):
    """Written by the simulator before message kinds: queue entries named the sender, outbox
    entries the recipient's digits."""
    data = {
        "version": 1,
        "next_seq": 8,
        "phones": [{
            "phone": PHONE,
            "device": "dev-a",
            "pushname": "Shop",
            "queue": [{"seq": 7, "id": "OLD1", "sender": CUSTOMER, "body": "still waiting", "name": "Ann", "t": T}],
            "outbox": [{"id": "3EB0CAFE", "to": CUSTOMER, "body": "sent before", "sent_at_ms": T * 1000}],
        }],
    }
    restored = SimState(qr_rotate_ms=ROTATE_MS, clock=clock)
    restored.restore(json.loads(json.dumps(data)))
    assert [s.to_json() for s in restored.outbox(PHONE)] == [
        {"id": "3EB0CAFE", "to": CUSTOMER, "chat": f"{CUSTOMER}@c.us", "body": "sent before",
         "sent_at": iso_utc(T * 1000), "resent": False}
    ]
    assert restored.phones()[0]["pushname"] == "Shop"
    connected, message, _synced = frames(restored.connect("dev-a", KEYS, PHONE))
    assert connected["pushname"] == "Shop"
    assert message["seq"] == 7
    assert message["msg"] == {
        "key": {"fromMe": False, "remote": f"{CUSTOMER}@c.us", "id": "OLD1"},
        "type": "chat", "body": "still waiting", "t": T, "notifyName": "Ann",
        "from": f"{CUSTOMER}@c.us", "to": f"{PHONE}@c.us",
    }
    assert restored.snapshot()["version"] == 3, "it is saved in the new version"
    _, effects = dm(restored, "NEW1")
    assert frames(effects)[0]["seq"] == 8


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"version": 1},
        {"version": 2},
        {"version": 4, "next_seq": 1, "phones": []},
        {"version": 1, "next_seq": 1, "phones": [{"phone": "1"}]},
        {"version": 2, "next_seq": 1, "phones": [{"phone": PHONE, "device": None, "pushname": "",
                                                 "queue": [{"seq": 1}], "outbox": []}]},
        [],
    ],
)
def test_restore_rejects_what_is_not_a_snapshot(clock, data):
    with pytest.raises(ValueError):
        SimState(qr_rotate_ms=ROTATE_MS, clock=clock).restore(data)


def test_revision_moves_only_on_what_is_worth_saving(sim):
    before = sim.revision
    sim.connect("dev-a", KEYS, None)
    sim.report_state("dev-a", "UNPAIRED")
    assert sim.revision == before
    sim.scan(payload("2@ref1"), PHONE)
    assert sim.revision > before
    sim.connect("dev-a", KEYS, PHONE)
    before = sim.revision
    dm(sim, "M1")
    assert sim.revision > before
    before = sim.revision
    sim.record_send("dev-a", "3EB0AAAA", f"{CUSTOMER}@c.us", "hi")
    assert sim.revision > before


# --- the kinds of message --------------------------------------------------------------------------


def test_a_direct_message_comes_from_the_customers_number():
    assert wire(entry("dm", **{"from": CUSTOMER, "body": "hi", "name": "Ann"}), PHONE) == {
        "op": "add",
        "msg": {"key": {"fromMe": False, "remote": f"{CUSTOMER}@c.us", "id": "M1"}, "type": "chat", "body": "hi",
                "t": T, "notifyName": "Ann", "from": f"{CUSTOMER}@c.us", "to": f"{PHONE}@c.us"},
        "contacts": [],
    }


def test_a_lid_message_comes_from_the_lid_and_tells_its_phone_number_only_when_given():
    with_pn = wire(entry("lid", **{"from": "211111111111111", "body": "hi", "pn": CUSTOMER}), PHONE)
    assert with_pn["msg"]["key"] == {"fromMe": False, "remote": "211111111111111@lid", "id": "M1"}
    assert with_pn["msg"]["from"] == "211111111111111@lid"
    assert with_pn["contacts"] == [{"lid": "211111111111111@lid", "pn": f"{CUSTOMER}@c.us"}]
    without = wire(entry("lid", **{"from": "211111111111111", "body": "hi"}), PHONE)
    assert without["contacts"] == []


def test_a_group_message_is_in_the_group_with_the_author_as_participant():
    msg = wire(entry("group", group=GROUP, body="hi", **{"from": CUSTOMER}), PHONE)["msg"]
    assert msg["key"] == {"fromMe": False, "remote": f"{GROUP}@g.us", "id": "M1", "participant": f"{CUSTOMER}@c.us"}
    assert (msg["from"], msg["author"], msg["to"]) == (f"{GROUP}@g.us", f"{CUSTOMER}@c.us", f"{PHONE}@c.us")


def test_a_status_post_is_on_the_status_broadcast_with_the_poster_as_author():
    msg = wire(entry("status", body="my day", **{"from": CUSTOMER}), PHONE)["msg"]
    assert msg["key"] == {"fromMe": False, "remote": "status@broadcast", "id": "M1", "participant": f"{CUSTOMER}@c.us"}
    assert (msg["from"], msg["author"], msg["broadcast"]) == ("status@broadcast", f"{CUSTOMER}@c.us", True)


def test_a_newsletter_post_comes_from_the_channel():
    msg = wire(entry("newsletter", body="news", **{"from": "120363999999999999"}), PHONE)["msg"]
    assert msg["key"] == {"fromMe": False, "remote": "120363999999999999@newsletter", "id": "M1"}
    assert msg["from"] == "120363999999999999@newsletter"


def test_an_image_carries_its_caption_apart_and_a_thumbnail_as_body():
    msg = wire(entry("image", caption="look", **{"from": CUSTOMER}), PHONE)["msg"]
    assert (msg["type"], msg["caption"], msg["body"], msg["mimetype"]) == ("image", "look", THUMBNAIL, "image/jpeg")
    assert re.fullmatch(r"/v/t62\.7118-24/[0-9a-f]{24}\.enc", msg["directPath"])
    assert (len(msg["mediaKey"]), len(msg["filehash"]), msg["size"]) == (44, 44, 631)
    other = wire(entry("image", id="M2", **{"from": CUSTOMER}), PHONE)["msg"]
    assert other["caption"] == ""
    assert other["directPath"] != msg["directPath"], "each image is its own media"


def test_a_ciphertext_has_no_body_until_it_decrypts():
    msg = wire(entry("ciphertext", body="secret", decrypt_ms=250, **{"from": CUSTOMER}), PHONE)["msg"]
    assert (msg["type"], msg["body"]) == ("ciphertext", "")
    assert msg["decrypt"] == {"type": "chat", "body": "secret", "after_ms": 250}
    assert parse("ciphertext", {"from": CUSTOMER, "body": "x"})["decrypt_ms"] == 500


@pytest.mark.parametrize("kind", ["revoke", "edit", "reaction"])
def test_an_action_names_the_message_it_acts_on_in_its_chat(kind):
    fields = {"ref": "ORIG1", "from": CUSTOMER, **({"body": "new"} if kind == "edit" else {})}
    frame = wire(entry(kind, id="ACT1", **fields), PHONE)
    assert frame["op"] == kind
    assert frame["target"] == {"fromMe": False, "remote": f"{CUSTOMER}@c.us", "id": "ORIG1"}
    assert frame["key"] == {"fromMe": False, "remote": f"{CUSTOMER}@c.us", "id": "ACT1"}
    assert frame["t"] == T
    assert frame.get("body") == {"revoke": None, "edit": "new", "reaction": "👍"}[kind]
    in_group = wire(entry(kind, id="ACT1", group=GROUP, **fields), PHONE)
    participant = {"participant": f"{CUSTOMER}@c.us"}
    assert in_group["target"] == {"fromMe": False, "remote": f"{GROUP}@g.us", "id": "ORIG1", **participant}
    assert in_group["key"] == {"fromMe": False, "remote": f"{GROUP}@g.us", "id": "ACT1", **participant}


def test_a_message_typed_on_the_phone_is_from_me_to_the_customer():
    msg = wire(entry("own", to=CUSTOMER, body="typed"), PHONE)["msg"]
    assert msg["key"] == {"fromMe": True, "remote": f"{CUSTOMER}@c.us", "id": "M1"}
    assert (msg["from"], msg["to"], msg["self"], msg["ack"]) == (f"{PHONE}@c.us", f"{CUSTOMER}@c.us", "out", 1)


def test_an_action_without_an_id_gets_one_from_the_service(sim):
    linked(sim)
    _, effects = sim.post_message(PHONE, "reaction", {"ref": "ORIG1", "from": CUSTOMER})
    (frame,) = frames(effects)
    assert frame["key"]["id"] == "3EB00001"
    with pytest.raises(SimError) as caught:
        sim.post_message(PHONE, "dm", {"from": CUSTOMER, "body": "x"})
    assert (caught.value.status, caught.value.message) == (400, "missing field 'id'")


def test_a_lid_is_stable_fifteen_digits_and_never_the_number():
    assert lid_of(PHONE) == lid_of(PHONE)
    assert re.fullmatch(r"[0-9]{15}", lid_of(PHONE))
    assert lid_of(PHONE) != lid_of(CUSTOMER)
    assert lid_of(PHONE) != PHONE


VALID = {
    "dm": {"from": CUSTOMER, "body": "x"},
    "lid": {"from": "211111111111111", "body": "x", "pn": CUSTOMER},
    "group": {"group": GROUP, "from": CUSTOMER, "body": "x"},
    "status": {"from": CUSTOMER, "body": "x"},
    "newsletter": {"from": "120363999999999999", "body": "x"},
    "image": {"from": CUSTOMER, "caption": "x"},
    "ciphertext": {"from": CUSTOMER, "body": "x", "decrypt_ms": 0},
    "revoke": {"ref": "ORIG1", "from": CUSTOMER, "group": GROUP},
    "edit": {"ref": "ORIG1", "from": CUSTOMER, "body": "x"},
    "reaction": {"ref": "ORIG1", "from": CUSTOMER, "body": "❤️"},
    "own": {"to": CUSTOMER, "body": "x"},
}


def test_every_kind_has_a_valid_example():
    assert set(VALID) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_posted_with_its_fields(sim, kind):
    linked(sim)
    queued, effects = sim.post_message(PHONE, kind, {"id": "M1", "name": "Ann", **VALID[kind]})
    assert queued is False
    assert [f["type"] for f in frames(effects)] == ["msg"]


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        ("sms", {"from": CUSTOMER, "body": "x"}, "kind must be one of"),
        ("dm", {"body": "x"}, "missing field 'from'"),
        ("dm", {"from": CUSTOMER}, "missing field 'body'"),
        ("dm", {"from": 15559990000, "body": "x"}, "field 'from' must be of type str"),
        ("dm", {"from": CUSTOMER, "body": None}, "field 'body' must be of type str"),
        ("dm", {"from": CUSTOMER, "body": "x", "name": 5}, "field 'name' must be of type str"),
        ("dm", {"from": "ann", "body": "x"}, "from must be 5 to 20 digits"),
        ("lid", {"from": "211111111111111", "body": "x", "pn": "+1555"}, "pn must be 5 to 20 digits"),
        ("group", {"from": CUSTOMER, "body": "x"}, "missing field 'group'"),
        ("group", {"group": "abc", "from": CUSTOMER, "body": "x"}, "group must be 5 to 20 digits"),
        ("newsletter", {"from": "news", "body": "x"}, "from must be 5 to 20 digits"),
        ("image", {"from": CUSTOMER, "caption": ["x"]}, "field 'caption' must be of type str"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": -1}, "decrypt_ms must be an integer"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": 60_001}, "decrypt_ms must be an integer"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": "soon"}, "decrypt_ms must be an integer"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": True}, "decrypt_ms must be an integer"),
        ("revoke", {"from": CUSTOMER}, "missing field 'ref'"),
        ("revoke", {"ref": "a_b", "from": CUSTOMER}, "ref must be 1 to 64"),
        ("revoke", {"ref": "ORIG1"}, "missing field 'from'"),
        ("edit", {"ref": "ORIG1", "from": CUSTOMER}, "missing field 'body'"),
        ("reaction", {"ref": "ORIG1", "from": CUSTOMER, "group": 1}, "field 'group' must be of type str"),
        ("own", {"from": CUSTOMER, "body": "x"}, "missing field 'to'"),
        ("own", {"to": "me", "body": "x"}, "to must be 5 to 20 digits"),
    ],
)
def test_a_kind_with_a_missing_or_wrong_field_is_a_400_naming_it(sim, kind, data, error):
    with pytest.raises(SimError) as caught:
        sim.post_message(PHONE, kind, {"id": "M1", **data})
    assert caught.value.status == 400
    assert error in caught.value.message
    assert sim.phones() == [], "nothing was queued"


@pytest.mark.parametrize("bad", ["", "has space", "a_b", "x" * 65, 42])
def test_a_message_id_is_letters_digits_and_dashes(sim, bad):
    with pytest.raises(SimError) as caught:
        sim.post_message(PHONE, "dm", {"id": bad, "from": CUSTOMER, "body": "x"})
    assert caught.value.status == 400
    with pytest.raises(KindError):
        parse("revoke", {"ref": bad if isinstance(bad, str) else "", "from": CUSTOMER})
