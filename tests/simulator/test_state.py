"""The simulated service's rules, without sockets or browsers: a fake clock and counters for refs
and message ids make every outcome exact."""

from __future__ import annotations

import itertools
import json

import pytest

from simulator.state import MAX_REMEMBERED_REFS, Close, DeviceKeys, Send, SimError, SimState, iso_utc

ROTATE_MS = 1000
PHONE = "15550001111"
CUSTOMER = "15559990000"
KEYS = DeviceKeys("bm9pc2Vub2lzZW5vaXNl", "aWRlbnRpdHlpZGVudGl0eQ==", "YWR2YWR2YWR2YWR2YWR2")


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

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


def payload(ref: str, keys: DeviceKeys = KEYS) -> str:
    return f"{ref},{keys.noise},{keys.identity},{keys.adv}"


def linked(sim: SimState, device: str = "dev-a", phone: str = PHONE) -> None:
    """Open an unlinked page, scan it, and say hello again as the linked page does."""
    ref = frames(sim.connect(device, KEYS, None), device)[-1]["ref"]
    sim.scan(payload(ref), phone)
    sim.connect(device, KEYS, phone)


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
    }
    sim.report_state("dev-a", "UNPAIRED")
    assert sim.devices()[0]["state"] == "UNPAIRED"


def test_refs_rotate_when_due_and_never_run_out(sim, clock):
    sim.connect("dev-a", KEYS, None)
    clock.advance(ROTATE_MS - 1)
    assert sim.tick() == []
    refs = []
    for _ in range(20):
        clock.advance(ROTATE_MS)
        refs += [f["ref"] for f in frames(sim.tick())]
    assert refs == [f"2@ref{n}" for n in range(2, 22)]


def test_a_scan_of_the_current_ref_pairs_the_page_and_its_hello_connects_it(sim):
    sim.connect("dev-a", KEYS, None)
    device, effects = sim.scan(payload("2@ref1"), PHONE, "Shop")
    assert device == "dev-a"
    assert frames(effects) == [{"type": "paired", "wid": PHONE, "pushname": "Shop"}]
    assert sim.devices()[0]["qr"] is None
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [
        {"type": "connected", "wid": PHONE, "pushname": "Shop"}
    ]
    assert sim.phones() == [
        {"phone": PHONE, "device": "dev-a", "pushname": "Shop", "online": True, "queued": 0, "outbox": 0}
    ]


@pytest.mark.parametrize(
    ("qr", "status"),
    [
        ("2@ref1", 400),  # not the four-part payload
        ("2@ref1,,b,c", 400),
        (
            payload("2@ref1", DeviceKeys("b3RoZXJvdGhlcm90aGVy", KEYS.identity, KEYS.adv)),
            400,
        ),  # someone else's keys
        (payload("2@never"), 404),
    ],
)
def test_a_scan_that_does_not_match_a_shown_qr_is_refused(sim, qr, status):
    sim.connect("dev-a", KEYS, None)
    with pytest.raises(SimError) as caught:
        sim.scan(qr, PHONE)
    assert caught.value.status == status


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
    sim = SimState(qr_rotate_ms=1, clock=clock, new_ref=lambda: next(refs))
    sim.connect("dev-a", KEYS, None)
    for _ in range(MAX_REMEMBERED_REFS + 5):
        clock.advance(1)
        sim.tick()
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@r0"), PHONE)
    assert caught.value.status == 404


def test_the_phone_must_be_digits(sim):
    sim.connect("dev-a", KEYS, None)
    with pytest.raises(SimError) as caught:
        sim.scan(payload("2@ref1"), "+1 555")
    assert caught.value.status == 400


def test_messages_wait_in_order_until_the_linked_page_connects_and_leave_only_when_acknowledged(sim):
    for n in (1, 2):
        queued, effects = sim.post_message(PHONE, f"M{n}", CUSTOMER, f"#{n}", "Ann")
        assert (queued, effects) == (True, [])
    ref = frames(sim.connect("dev-a", KEYS, None))[-1]["ref"]
    sim.scan(payload(ref), PHONE)
    connected, first, second = frames(sim.connect("dev-a", KEYS, PHONE))
    assert connected["type"] == "connected"
    assert (first["id"], first["body"], first["from"], first["name"]) == ("M1", "#1", CUSTOMER, "Ann")
    assert second["id"] == "M2"
    assert first["t"] == 1_700_000_000
    assert sim.tick() == [], "what is in flight is not pushed twice"

    sim.acknowledge("dev-a", first["seq"])
    sim.disconnect("dev-a")  # the page reloads before acknowledging M2
    assert [f["id"] for f in frames(sim.connect("dev-a", KEYS, PHONE))[1:]] == ["M2"]
    assert sim.phones()[0]["queued"] == 1


def test_a_message_to_a_connected_page_is_pushed_at_once_and_a_duplicate_id_twice(sim):
    linked(sim)
    for _ in range(2):
        queued, effects = sim.post_message(PHONE, "DUP", CUSTOMER, "x")
        assert queued is False
        assert [f["id"] for f in frames(effects)] == ["DUP"]


def test_sending_needs_a_connected_linked_device_and_fills_the_outbox(sim, clock):
    sim.connect("dev-a", KEYS, None)
    with pytest.raises(SimError):
        sim.record_send("dev-a", CUSTOMER, "hi")
    sim.scan(payload("2@ref1"), PHONE)
    sim.connect("dev-a", KEYS, PHONE)
    sent = sim.record_send("dev-a", CUSTOMER, "hi")
    assert sent.id == "3EB00001"
    assert [s.to_json() for s in sim.outbox(PHONE)] == [
        {"id": "3EB00001", "to": CUSTOMER, "body": "hi", "sent_at": iso_utc(clock.ms)}
    ]
    sim.clear_outbox(PHONE)
    assert sim.outbox(PHONE) == []


def test_iso_utc_has_milliseconds_and_a_z():
    assert iso_utc(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"


def test_an_unknown_phone_is_a_404(sim):
    for call in (
        lambda: sim.outbox(PHONE),
        lambda: sim.logout(PHONE),
        lambda: sim.drop(PHONE, 10, silent=False),
    ):
        with pytest.raises(SimError) as caught:
            call()
        assert caught.value.status == 404


def test_a_loud_drop_closes_the_socket_and_refuses_the_device_until_it_ends(sim, clock):
    linked(sim)
    assert sim.drop(PHONE, 3000, silent=False) == [Close("dev-a")]
    sim.disconnect("dev-a")
    assert sim.is_refused("dev-a")
    clock.advance(3000)
    assert not sim.is_refused("dev-a")
    assert frames(sim.connect("dev-a", KEYS, PHONE))[0]["type"] == "connected"


def test_a_silent_drop_keeps_the_socket_but_sends_nothing_until_it_ends(sim, clock):
    linked(sim)
    assert sim.drop(PHONE, 3000, silent=True) == []
    assert sim.is_silenced("dev-a")
    assert not sim.is_refused("dev-a")
    queued, effects = sim.post_message(PHONE, "M1", CUSTOMER, "x")
    assert (queued, effects) == (True, [])
    assert sim.tick() == []
    clock.advance(3000)
    assert [f["id"] for f in frames(sim.tick())] == ["M1"], "held-back messages flow again on the same socket"


def test_logout_of_an_online_page_tells_it_and_shows_a_new_qr(sim):
    linked(sim)
    assert frames(sim.logout(PHONE)) == [{"type": "logout"}, {"type": "ref", "ref": "2@ref2"}]
    assert sim.devices()[0]["phone"] is None
    assert sim.phones()[0]["device"] is None


def test_logout_of_an_offline_page_is_told_at_its_next_connect(sim):
    linked(sim)
    sim.disconnect("dev-a")
    assert sim.logout(PHONE) == []
    assert frames(sim.connect("dev-a", KEYS, PHONE)) == [{"type": "logout"}, {"type": "ref", "ref": "2@ref2"}]


def test_a_page_that_forgot_its_link_is_unlinked(sim):
    linked(sim)
    sim.disconnect("dev-a")
    assert frames(sim.connect("dev-a", KEYS, None)) == [{"type": "ref", "ref": "2@ref2"}]
    assert sim.phones()[0]["device"] is None


def test_a_new_scan_by_the_same_phone_logs_the_old_device_out(sim):
    linked(sim, "dev-a")
    ref = frames(sim.connect("dev-b", KEYS, None), "dev-b")[-1]["ref"]
    device, effects = sim.scan(payload(ref), PHONE)
    assert device == "dev-b"
    assert [f["type"] for f in frames(effects, "dev-a")] == ["logout", "ref"]
    assert [f["type"] for f in frames(effects, "dev-b")] == ["paired"]
    assert {d["device"]: d["phone"] for d in sim.devices()} == {"dev-a": None, "dev-b": PHONE}


def test_reset_forgets_everything_and_closes_open_sockets(sim):
    linked(sim)
    sim.post_message(PHONE, "M1", CUSTOMER, "x")
    assert sim.reset() == [Close("dev-a")]
    assert sim.devices() == []
    assert sim.phones() == []


def test_a_snapshot_keeps_links_queues_and_outboxes_but_not_sockets(sim, clock):
    linked(sim)
    sim.record_send("dev-a", CUSTOMER, "hi")
    sim.disconnect("dev-a")
    sim.post_message(PHONE, "M1", CUSTOMER, "queued")
    data = json.loads(json.dumps(sim.snapshot()))

    restored = SimState(qr_rotate_ms=ROTATE_MS, clock=clock)
    restored.restore(data)
    assert restored.devices()[0] == {
        "device": "dev-a",
        "phone": PHONE,
        "online": False,
        "state": None,
        "ref": None,
        "qr": None,
    }
    assert [s.body for s in restored.outbox(PHONE)] == ["hi"]
    connected, message = frames(restored.connect("dev-a", KEYS, PHONE))
    assert (connected["type"], message["id"]) == ("connected", "M1")
    _, effects = restored.post_message(PHONE, "M2", CUSTOMER, "next")
    assert frames(effects)[0]["seq"] > message["seq"]


@pytest.mark.parametrize(
    "data", [{}, {"version": 1}, {"version": 1, "next_seq": 1, "phones": [{"phone": "1"}]}, []]
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



def test_a_client_message_id_makes_a_resend_idempotent(sim):
    linked(sim)
    first = sim.record_send("dev-a", CUSTOMER, "hello", "3EB0AAAABBBBCCCC")
    again = sim.record_send("dev-a", CUSTOMER, "hello", "3EB0AAAABBBBCCCC")
    other = sim.record_send("dev-a", CUSTOMER, "hello")
    assert again == first
    assert [sent.id for sent in sim.outbox(PHONE)] == ["3EB0AAAABBBBCCCC", other.id]
    with pytest.raises(SimError):
        sim.record_send("dev-a", CUSTOMER, "hello", "bad id!")
