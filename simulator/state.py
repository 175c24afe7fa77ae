"""What the simulated WhatsApp service knows: browser devices, the phones linked to them, QR refs,
each phone's queue of incoming messages and its outbox.

Pure and synchronous on purpose: every rule of the simulator lives here and is unit-tested without
sockets or timers. Methods that change what a page should see return `Effect`s (frames to push to a
device, sockets to close); `server.py` only moves those bytes and calls `tick()` on a timer. Time and
randomness are injected so tests can drive them.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulator.kinds import Incoming, KindError, lid_of, message_id, parse, wire

WA_SERVER = "c.us"
SNAPSHOT_VERSION = 2
# CompanionWebClientType of Chrome: the fifth field of the QR payload (WAWebCompanionRegClientUtils.DEVICE_PLATFORM).
DEVICE_PLATFORM = "1"
# How many refs one QR "batch" shows before the page goes UNPAIRED_IDLE (until Cmd.refreshQR()).
QR_REFS_PER_BATCH = 6
# Expired refs are remembered only to tell "expired" (410) from "never issued" (404); bounded so a
# long demo with fast rotation cannot grow without limit.
MAX_REMEMBERED_REFS = 10_000
_DIGITS = re.compile(r"[0-9]{5,20}")
# A chat a page may send to: `<digits>@c.us|lid|g.us|newsletter`, or the status broadcast.
_CHAT = re.compile(r"(?:[0-9]{5,20}@(?:c\.us|lid|g\.us|newsletter)|status@broadcast)")


class SimError(Exception):
    """A request the simulated service refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Send:
    """Push one JSON frame to the page of `device`."""

    device: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Close:
    """Close the socket of `device` (a network drop)."""

    device: str


Effect = Send | Close


@dataclass(frozen=True)
class DeviceKeys:
    """The public keys a page puts in its QR payload after the ref."""

    noise: str
    identity: str
    adv: str


@dataclass
class Device:
    """One browser profile, as the service sees it."""

    id: str
    phone: str | None = None
    keys: DeviceKeys | None = None
    online: bool = False
    # Online and greeted as the linked device of `phone` (the page is CONNECTED).
    connected: bool = False
    page_state: str | None = None
    ref: str | None = None
    ref_issued_ms: int = 0
    # Refs shown in the current batch; after QR_REFS_PER_BATCH the page idles until it asks for more.
    refs_in_batch: int = 0
    refuse_until_ms: int = 0
    silent_until_ms: int = 0


@dataclass(frozen=True)
class Sent:
    """A message the linked device sent."""

    id: str
    chat: str
    body: str
    sent_at_ms: int
    # Recorded from the page's own retry of a message it had stored and never seen acknowledged.
    resent: bool = False

    @property
    def to(self) -> str:
        return self.chat.split("@", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The outbox entry as the control API returns it."""
        return {"id": self.id, "to": self.to, "chat": self.chat, "body": self.body,
                "sent_at": iso_utc(self.sent_at_ms), "resent": self.resent}


@dataclass
class Phone:
    """A customer-facing WhatsApp number: at most one linked device, a queue and an outbox."""

    number: str
    device: str | None = None
    pushname: str = ""
    queue: list[Incoming] = field(default_factory=list)
    # Queue entries pushed to the current connection and not acknowledged yet.
    in_flight: set[int] = field(default_factory=set)
    outbox: list[Sent] = field(default_factory=list)


def iso_utc(ms: int) -> str:
    """ISO 8601 UTC with milliseconds and a Z, e.g. 2025-01-02T03:04:05.678Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def require_digits(value: str, what: str) -> str:
    """Phone numbers are bare digits, as in a wid's user part."""
    if not _DIGITS.fullmatch(value):
        raise SimError(400, f"{what} must be 5 to 20 digits, got {value!r}")
    return value


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _new_ref() -> str:
    return f"2@{secrets.token_urlsafe(36)}"


def _new_message_id() -> str:
    return f"3EB0{secrets.token_hex(9).upper()}"


class SimState:
    """The whole simulated service. Not thread-safe: the server calls it from one event loop."""

    def __init__(
        self,
        *,
        qr_rotate_ms: int,
        qr_refs_per_batch: int = QR_REFS_PER_BATCH,
        clock: Callable[[], int] = _now_ms,
        new_ref: Callable[[], str] = _new_ref,
        new_message_id: Callable[[], str] = _new_message_id,
    ) -> None:
        self._qr_rotate_ms = qr_rotate_ms
        self._qr_refs_per_batch = qr_refs_per_batch
        self._clock = clock
        self._new_ref = new_ref
        self._new_message_id = new_message_id
        self._devices: dict[str, Device] = {}
        self._phones: dict[str, Phone] = {}
        self._expired_refs: OrderedDict[str, None] = OrderedDict()
        self._next_seq = 1
        # Bumped on every change worth persisting (links, queues, outboxes).
        self.revision = 0

    # --- the page side -------------------------------------------------------------------------

    def is_refused(self, device_id: str) -> bool:
        """During a (non-silent) network drop the device cannot open a socket."""
        device = self._devices.get(device_id)
        return device is not None and self._clock() < device.refuse_until_ms

    def is_silenced(self, device_id: str) -> bool:
        """During a silent drop the service neither answers nor pushes anything to the device."""
        device = self._devices.get(device_id)
        return device is not None and self._clock() < device.silent_until_ms

    def connect(self, device_id: str, keys: DeviceKeys, wid: str | None) -> list[Effect]:
        """A page said hello: `wid` is the phone it believes it is linked to (from its storage).

        A linked page is told it is connected, gets what waited for it (the offline messages) and
        then `synced` — WhatsApp Web's `Socket.hasSynced`."""
        device = self._devices.setdefault(device_id, Device(device_id))
        device.keys = keys
        device.online = True
        device.connected = False
        if wid is not None and wid == device.phone:
            phone = self._phones[wid]
            device.connected = True
            phone.in_flight.clear()
            connected = self._send(device, {"type": "connected", "wid": wid, "lid": lid_of(wid),
                                            "pushname": phone.pushname, "platform": "android"})
            return connected + self._deliver(phone) + self._send(device, {"type": "synced"})
        # The page and the service disagree about the link: the service wins.
        if device.phone is not None:
            self._unlink(device)
        if wid is not None:
            return self._send(device, {"type": "logout"})  # the page clears its storage and reloads
        device.refs_in_batch = 0
        return self._issue_ref(device)

    def disconnect(self, device_id: str) -> None:
        """The device's socket is gone; unacknowledged messages will be pushed again next time."""
        device = self._devices.get(device_id)
        if device is None:
            return
        device.online = device.connected = False
        device.page_state = None
        self._expire_ref(device)
        if device.phone is None:
            del self._devices[device_id]
        else:
            self._phones[device.phone].in_flight.clear()

    def report_state(self, device_id: str, state: str) -> None:
        """The page's Socket.state, kept only to show it in the device list."""
        device = self._devices.get(device_id)
        if device is not None and device.online:
            device.page_state = state

    def refresh_qr(self, device_id: str) -> list[Effect]:
        """`Cmd.refreshQR()` on an idle QR page: a new batch of refs."""
        device = self._devices.get(device_id)
        if device is None or not device.online or device.phone is not None or device.ref is not None:
            return []
        device.refs_in_batch = 0
        return self._issue_ref(device)

    def page_logout(self, device_id: str) -> None:
        """`Socket.logout()` on the page: the device unlinks itself (the page clears its own storage)."""
        device = self._devices.get(device_id)
        if device is not None and device.phone is not None:
            self._unlink(device)

    def acknowledge(self, device_id: str, seq: int) -> None:
        """The page stored message `seq`: it leaves the queue."""
        device = self._devices.get(device_id)
        if device is None or device.phone is None:
            return
        phone = self._phones[device.phone]
        before = len(phone.queue)
        phone.queue = [entry for entry in phone.queue if entry.seq != seq]
        phone.in_flight.discard(seq)
        if len(phone.queue) != before:
            self.revision += 1

    def record_send(self, device_id: str, key_id: str, chat: str, body: str, *, resend: bool = False) -> Sent:
        """The page sent a message with the key id it chose; only a connected, linked device may.

        The service delivers every send it is given: the same id sent twice reaches the customer
        twice. Only the page's own retry of a message it never saw acknowledged (`resend`) is
        recognised by its id, as WhatsApp's recipients recognise a retried stanza.
        """
        device = self._devices.get(device_id)
        if device is None or not device.connected or device.phone is None:
            raise SimError(409, "this device is not connected to a phone")
        try:
            message_id(key_id)
        except KindError as exc:
            raise SimError(400, str(exc)) from exc
        if not _CHAT.fullmatch(chat):
            raise SimError(400, f"cannot send to {chat!r}")
        outbox = self._phones[device.phone].outbox
        if resend:
            earlier = next((sent for sent in outbox if sent.id == key_id), None)
            if earlier is not None:
                return earlier
        sent = Sent(id=key_id, chat=chat, body=body, sent_at_ms=self._clock(), resent=resend)
        outbox.append(sent)
        self.revision += 1
        return sent

    def tick(self) -> list[Effect]:
        """Time passing: rotate refs that are due, push queued messages a silence held back."""
        now = self._clock()
        effects: list[Effect] = []
        for device in list(self._devices.values()):
            if device.online and device.ref is not None and now - device.ref_issued_ms >= self._qr_rotate_ms:
                if device.refs_in_batch >= self._qr_refs_per_batch:
                    self._expire_ref(device)
                    effects += self._send(device, {"type": "idle"})
                else:
                    effects += self._issue_ref(device)
        for phone in self._phones.values():
            effects += self._deliver(phone)
        return effects

    # --- the control API -----------------------------------------------------------------------

    def scan(self, payload: str, phone_number: str, name: str = "") -> tuple[str, list[Effect]]:
        """The phone scanned a QR: link the device currently showing that ref. Returns the device id."""
        require_digits(phone_number, "phone")
        parts = payload.split(",")
        if len(parts) != 5 or not all(parts):
            raise SimError(
                400, "qr must be the payload 'ref,staticKeyB64,identityKeyB64,advSecretB64,platform' (five fields)"
            )
        ref, *keys, platform = parts
        if platform != DEVICE_PLATFORM:
            raise SimError(400, f"this QR names platform {platform!r}; the page shows {DEVICE_PLATFORM!r} (Chrome)")
        device = next((d for d in self._devices.values() if d.ref == ref), None)
        if device is None:
            if ref in self._expired_refs:
                raise SimError(
                    410, "this QR has expired (it rotated or its page went away): scan the current one"
                )
            raise SimError(404, "no device is showing this QR")
        if device.keys != DeviceKeys(*keys):
            raise SimError(400, "the keys in this QR do not match the device showing its ref")
        phone = self._phones.setdefault(phone_number, Phone(phone_number))
        effects: list[Effect] = []
        if phone.device is not None:
            effects += self._unlink_and_tell(self._devices[phone.device])
        self._expire_ref(device)
        device.phone = phone_number
        phone.device = device.id
        phone.pushname = name
        self.revision += 1
        effects += self._send(device, {"type": "paired", "wid": phone_number, "pushname": name})
        return device.id, effects

    def post_message(self, phone_number: str, kind: str, data: dict[str, Any]) -> tuple[bool, list[Effect]]:
        """Something reaches the phone's account (`kinds.KINDS`). Returns (still queued, effects)."""
        require_digits(phone_number, "phone")
        try:
            fields = parse(kind, data)
            given = data.get("id")
            if given is None and kind in ("revoke", "edit", "reaction"):
                given = self._new_message_id()
            if not isinstance(given, str):
                raise KindError("field 'id' must be of type str" if given is not None else "missing field 'id'")
            message_id(given)
        except KindError as exc:
            raise SimError(400, str(exc)) from exc
        phone = self._phones.setdefault(phone_number, Phone(phone_number))
        entry = Incoming(self._next_seq, kind, given, fields, self._clock() // 1000)
        self._next_seq += 1
        phone.queue.append(entry)
        self.revision += 1
        effects = self._deliver(phone)
        return not effects, effects

    def outbox(self, phone_number: str) -> list[Sent]:
        """What the phone's linked devices sent, in send order."""
        return list(self._phone(phone_number).outbox)

    def clear_outbox(self, phone_number: str) -> None:
        """Forget what was sent (tests start from an empty outbox)."""
        self._phone(phone_number).outbox.clear()
        self.revision += 1

    def drop(self, phone_number: str, duration_ms: int, *, silent: bool) -> list[Effect]:
        """A network drop of the phone's linked device for `duration_ms`.

        Loud: its socket is closed and it cannot open a new one until the drop ends. Silent: the
        socket stays open but the service stops answering it, so only the page's own ping timeout
        can notice.
        """
        device = self._linked_device(phone_number)
        until = self._clock() + duration_ms
        if silent:
            device.silent_until_ms = until
            return []
        device.refuse_until_ms = until
        return [Close(device.id)] if device.online else []

    def logout(self, phone_number: str) -> list[Effect]:
        """The phone unlinks its device; an offline device learns it when it next connects."""
        return self._unlink_and_tell(self._linked_device(phone_number))

    def reset(self) -> list[Effect]:
        """Forget everything; open sockets are closed so their pages start over on reload."""
        effects: list[Effect] = [Close(d.id) for d in self._devices.values() if d.online]
        self._devices.clear()
        self._phones.clear()
        self._expired_refs.clear()
        self.revision += 1
        return effects

    def devices(self) -> list[dict[str, Any]]:
        """Every known device, with the QR payload it shows (so tests can scan without a camera)."""
        return [
            {
                "device": d.id,
                "phone": d.phone,
                "online": d.online,
                "state": d.page_state,
                "ref": d.ref,
                "qr": self._payload(d),
            }
            for d in self._devices.values()
        ]

    def phones(self) -> list[dict[str, Any]]:
        """Every known phone with its link and counters (for the human phone page)."""
        return [
            {
                "phone": p.number,
                "lid": lid_of(p.number),
                "device": p.device,
                "pushname": p.pushname,
                "online": p.device is not None and self._devices[p.device].connected,
                "queued": len(p.queue),
                "outbox": len(p.outbox),
            }
            for p in self._phones.values()
        ]

    # --- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Links, queues and outboxes as JSON-able data; live sockets and refs are not kept."""
        return {
            "version": SNAPSHOT_VERSION,
            "next_seq": self._next_seq,
            "phones": [
                {
                    "phone": p.number,
                    "device": p.device,
                    "pushname": p.pushname,
                    "queue": [vars(entry) for entry in p.queue],
                    "outbox": [vars(sent) for sent in p.outbox],
                }
                for p in self._phones.values()
            ],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a snapshot into an empty state (version 1, from before message kinds, too).
        Raises ValueError if it is not one of ours."""
        version = data.get("version") if isinstance(data, dict) else None
        if version not in (1, SNAPSHOT_VERSION):
            raise ValueError(f"not a simulator state snapshot (version {SNAPSHOT_VERSION})")
        try:
            self._next_seq = int(data["next_seq"])
            for item in data["phones"]:
                phone = Phone(
                    number=item["phone"],
                    device=item["device"],
                    pushname=item["pushname"],
                    queue=[_restore_incoming(entry, version) for entry in item["queue"]],
                    outbox=[_restore_sent(sent, version) for sent in item["outbox"]],
                )
                self._phones[phone.number] = phone
                if phone.device is not None:
                    self._devices[phone.device] = Device(phone.device, phone=phone.number)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed simulator state snapshot: {exc!r}") from exc

    # --- internals -----------------------------------------------------------------------------

    def _phone(self, phone_number: str) -> Phone:
        require_digits(phone_number, "phone")
        phone = self._phones.get(phone_number)
        if phone is None:
            raise SimError(404, f"unknown phone {phone_number}")
        return phone

    def _linked_device(self, phone_number: str) -> Device:
        phone = self._phone(phone_number)
        if phone.device is None:
            raise SimError(404, f"phone {phone_number} has no linked device")
        return self._devices[phone.device]

    def _send(self, device: Device, message: dict[str, Any]) -> list[Effect]:
        """The one gate for frames to a page: a silenced device gets nothing."""
        if not device.online or self._clock() < device.silent_until_ms:
            return []
        return [Send(device.id, message)]

    def _deliver(self, phone: Phone) -> list[Effect]:
        """Push the queue entries the current connection has not been given yet, in order."""
        device = self._devices.get(phone.device) if phone.device is not None else None
        if device is None or not device.connected or self._clock() < device.silent_until_ms:
            return []
        effects: list[Effect] = []
        for entry in phone.queue:
            if entry.seq in phone.in_flight:
                continue
            phone.in_flight.add(entry.seq)
            effects += self._send(device, {"type": "msg", "seq": entry.seq, **wire(entry, phone.number)})
        return effects

    def _issue_ref(self, device: Device) -> list[Effect]:
        self._expire_ref(device)
        device.ref = self._new_ref()
        device.ref_issued_ms = self._clock()
        device.refs_in_batch += 1
        return self._send(device, {"type": "ref", "ref": device.ref})

    def _expire_ref(self, device: Device) -> None:
        if device.ref is None:
            return
        self._expired_refs[device.ref] = None
        while len(self._expired_refs) > MAX_REMEMBERED_REFS:
            self._expired_refs.popitem(last=False)
        device.ref = None

    def _unlink(self, device: Device) -> None:
        assert device.phone is not None
        phone = self._phones[device.phone]
        phone.device = None
        phone.in_flight.clear()
        device.phone = None
        device.connected = False
        device.refuse_until_ms = device.silent_until_ms = 0
        self.revision += 1

    def _unlink_and_tell(self, device: Device) -> list[Effect]:
        """Unlink; an online page is told at once (it clears its storage and reloads to a new QR)."""
        self._unlink(device)
        if not device.online:
            del self._devices[device.id]
            return []
        return self._send(device, {"type": "logout"})

    def _payload(self, device: Device) -> str | None:
        if device.ref is None or device.keys is None:
            return None
        return ",".join((device.ref, device.keys.noise, device.keys.identity, device.keys.adv, DEVICE_PLATFORM))


def _restore_incoming(entry: dict[str, Any], version: int) -> Incoming:
    if version == 1:  # a direct message, before kinds existed
        fields = {"from": entry["sender"], "body": entry["body"], "name": entry["name"]}
        return Incoming(entry["seq"], "dm", entry["id"], fields, entry["t"])
    return Incoming(**entry)


def _restore_sent(sent: dict[str, Any], version: int) -> Sent:
    if version == 1:
        return Sent(id=sent["id"], chat=f"{sent['to']}@c.us", body=sent["body"], sent_at_ms=sent["sent_at_ms"])
    return Sent(**sent)
