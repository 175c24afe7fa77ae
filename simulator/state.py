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
SNAPSHOT_VERSION = 3
# WhatsApp links up to four companion devices (browsers, desktops) to one phone.
MAX_COMPANIONS = 4
# Incoming messages kept per phone for the phone page ("what the customer wrote").
RECENT_INCOMING = 200
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
    # What the page announced at its first hello after pairing (WAWebMiscBrowserUtils.info():
    # `name` the browser, `os` — both of which whatsapp-web.js's deviceName/browserName set).
    browser: str = ""
    os: str = ""
    # Queue entries pushed to the current connection and not acknowledged yet.
    in_flight: set[int] = field(default_factory=set)

    @property
    def label(self) -> str:
        """How the phone's list of linked devices names it, e.g. "Chrome (Linux)"."""
        return f"{self.browser} ({self.os})" if self.browser and self.os else (self.browser or self.os or self.id)


@dataclass(frozen=True)
class Sent:
    """A message the linked device sent."""

    id: str
    chat: str
    body: str
    sent_at_ms: int
    # Recorded from the page's own retry of a message it had stored and never seen acknowledged.
    resent: bool = False
    # The linked device that sent it.
    device: str = ""

    @property
    def to(self) -> str:
        return self.chat.split("@", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The outbox entry as the control API returns it."""
        return {"id": self.id, "to": self.to, "chat": self.chat, "body": self.body,
                "sent_at": iso_utc(self.sent_at_ms), "resent": self.resent}


@dataclass
class Phone:
    """A customer-facing WhatsApp number: up to MAX_COMPANIONS linked devices, a queue and an outbox.

    Every linked device gets every incoming message: an entry stays queued until each device it is
    for has stored it (`pending`); an entry that came while no device was linked waits for the
    next one to link (its pending set is empty)."""

    number: str
    devices: list[str] = field(default_factory=list)
    pushname: str = ""
    queue: list[Incoming] = field(default_factory=list)
    pending: dict[int, set[str]] = field(default_factory=dict)
    outbox: list[Sent] = field(default_factory=list)
    # The latest incoming messages (not persisted): for the phone page's "the customer wrote".
    recent: list[Incoming] = field(default_factory=list)


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

    def connect(self, device_id: str, keys: DeviceKeys, wid: str | None,
                browser: dict[str, str] | None = None) -> list[Effect]:
        """A page said hello: `wid` is the phone it believes it is linked to (from its storage),
        `browser` what WAWebMiscBrowserUtils.info() says (kept from the first hello after pairing,
        as WhatsApp keeps the name a device registered with).

        A linked page is told it is connected, gets what waited for it (the offline messages) and
        then `synced` — WhatsApp Web's `Socket.hasSynced`."""
        device = self._devices.setdefault(device_id, Device(device_id))
        device.keys = keys
        device.online = True
        device.connected = False
        if wid is not None and wid == device.phone:
            phone = self._phones[wid]
            device.connected = True
            device.in_flight.clear()
            if browser and not (device.browser or device.os):
                device.browser, device.os = browser.get("name", "")[:60], browser.get("os", "")[:60]
                self.revision += 1
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
        device.in_flight.clear()
        self._expire_ref(device)
        if device.phone is None:
            del self._devices[device_id]

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
        device.in_flight.discard(seq)
        waiting = phone.pending.get(seq)
        if waiting is None or device_id not in waiting:
            return
        waiting.discard(device_id)
        if not waiting:  # every device it was for has it
            self._drop_entry(phone, seq)
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
        sent = Sent(id=key_id, chat=chat, body=body, sent_at_ms=self._clock(), resent=resend, device=device_id)
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
        if len(phone.devices) >= MAX_COMPANIONS:
            raise SimError(409, f"phone {phone_number} already has {MAX_COMPANIONS} linked devices (WhatsApp's "
                                "limit): log one out first")
        # Linking one device never unlinks another: WhatsApp keeps several per phone.
        self._expire_ref(device)
        device.phone = phone_number
        phone.devices.append(device.id)
        for waiting in phone.pending.values():
            if not waiting:  # came while no device was linked: this one gets it
                waiting.add(device.id)
        if name or not phone.pushname:
            phone.pushname = name
        self.revision += 1
        return device.id, self._send(device, {"type": "paired", "wid": phone_number, "pushname": phone.pushname})

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
        phone.pending[entry.seq] = set(phone.devices)
        phone.recent = [*phone.recent[-(RECENT_INCOMING - 1):], entry]
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

    def drop(self, phone_number: str, duration_ms: int, *, silent: bool, device_id: str | None = None) -> list[Effect]:
        """A network drop of the phone's linked devices (or of `device_id` only) for `duration_ms`.

        Loud: its socket is closed and it cannot open a new one until the drop ends. Silent: the
        socket stays open but the service stops answering it, so only the page's own ping timeout
        can notice.
        """
        until = self._clock() + duration_ms
        effects: list[Effect] = []
        for device in self._linked_devices(phone_number, device_id):
            if silent:
                device.silent_until_ms = until
                continue
            device.refuse_until_ms = until
            if device.online:
                effects.append(Close(device.id))
        return effects

    def logout(self, phone_number: str, device_id: str | None = None) -> list[Effect]:
        """The phone unlinks its devices (or `device_id` only); an offline device learns it when it
        next connects."""
        effects: list[Effect] = []
        for device in self._linked_devices(phone_number, device_id):
            effects += self._unlink_and_tell(device)
        return effects

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
                "name": d.label,
            }
            for d in self._devices.values()
        ]

    def phones(self) -> list[dict[str, Any]]:
        """Every known phone with its link and counters (for the human phone page)."""
        return [
            {
                "phone": p.number,
                "lid": lid_of(p.number),
                # The most recently linked device (the only one, mostly); `devices` lists them all.
                "device": p.devices[-1] if p.devices else None,
                "devices": [{"device": d.id, "name": d.label, "online": d.connected}
                            for d in (self._devices[i] for i in p.devices)],
                "pushname": p.pushname,
                "online": any(self._devices[i].connected for i in p.devices),
                "queued": len(p.queue),
                "outbox": len(p.outbox),
            }
            for p in self._phones.values()
        ]

    def conversation(self, phone_number: str) -> list[dict[str, Any]]:
        """The phone's outbox for a person to read: each reply with the device that sent it (by the
        name it announced) and what the customer last wrote in that chat before it."""
        phone = self._phone(phone_number)
        incoming = [(entry.t, wire(entry, phone.number)) for entry in phone.recent]
        out = []
        for sent in phone.outbox:
            wrote = None
            for t, frame in incoming:
                if t * 1000 > sent.sent_at_ms + 999:  # `t` is in whole seconds
                    break
                msg = frame.get("msg")
                if msg is None or msg["key"]["remote"] != sent.chat or msg["key"].get("fromMe"):
                    continue
                text = msg.get("caption") if msg["type"] == "image" else msg.get("body")
                if msg["type"] == "ciphertext":
                    text = msg["decrypt"]["body"]
                wrote = {"body": text or "", "kind": msg["type"], "at": iso_utc(t * 1000)}
            device = self._devices.get(sent.device)
            out.append({**sent.to_json(), "device": sent.device,
                        "device_name": device.label if device is not None else (sent.device or "?"),
                        "wrote": wrote})
        return out

    # --- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Links, queues and outboxes as JSON-able data; live sockets and refs are not kept."""
        return {
            "version": SNAPSHOT_VERSION,
            "next_seq": self._next_seq,
            "phones": [
                {
                    "phone": p.number,
                    "devices": [{"device": i, "browser": self._devices[i].browser, "os": self._devices[i].os}
                                for i in p.devices],
                    "pushname": p.pushname,
                    "queue": [{**vars(entry), "pending": sorted(p.pending.get(entry.seq, ()))} for entry in p.queue],
                    "outbox": [vars(sent) for sent in p.outbox],
                }
                for p in self._phones.values()
            ],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a snapshot into an empty state (versions 1, from before message kinds, and 2, from
        before several devices per phone, too). Raises ValueError if it is not one of ours."""
        version = data.get("version") if isinstance(data, dict) else None
        if version not in (1, 2, SNAPSHOT_VERSION):
            raise ValueError(f"not a simulator state snapshot (version {SNAPSHOT_VERSION})")
        try:
            self._next_seq = int(data["next_seq"])
            for item in data["phones"]:
                if version < 3:
                    linked = [{"device": item["device"]}] if item["device"] is not None else []
                else:
                    linked = list(item["devices"])
                devices = [Device(d["device"], phone=item["phone"], browser=d.get("browser", ""), os=d.get("os", ""))
                           for d in linked]
                phone = Phone(
                    number=item["phone"],
                    devices=[d.id for d in devices],
                    pushname=item["pushname"],
                    outbox=[_restore_sent(sent, version) for sent in item["outbox"]],
                )
                for entry in item["queue"]:
                    entry = dict(entry)
                    waiting = entry.pop("pending", None)
                    incoming = _restore_incoming(entry, version)
                    phone.queue.append(incoming)
                    phone.pending[incoming.seq] = set(waiting) if waiting is not None else set(phone.devices)
                self._phones[phone.number] = phone
                for device in devices:
                    self._devices[device.id] = device
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed simulator state snapshot: {exc!r}") from exc

    # --- internals -----------------------------------------------------------------------------

    def _phone(self, phone_number: str) -> Phone:
        require_digits(phone_number, "phone")
        phone = self._phones.get(phone_number)
        if phone is None:
            raise SimError(404, f"unknown phone {phone_number}")
        return phone

    def _linked_devices(self, phone_number: str, device_id: str | None = None) -> list[Device]:
        """The phone's linked devices, or only `device_id` (which must be one of them)."""
        phone = self._phone(phone_number)
        if not phone.devices:
            raise SimError(404, f"phone {phone_number} has no linked device")
        if device_id is None:
            return [self._devices[i] for i in phone.devices]
        if device_id not in phone.devices:
            raise SimError(404, f"device {device_id} is not linked to phone {phone_number}")
        return [self._devices[device_id]]

    def _send(self, device: Device, message: dict[str, Any]) -> list[Effect]:
        """The one gate for frames to a page: a silenced device gets nothing."""
        if not device.online or self._clock() < device.silent_until_ms:
            return []
        return [Send(device.id, message)]

    def _deliver(self, phone: Phone) -> list[Effect]:
        """Push to each connected device the queue entries it is owed and its current connection
        has not been given yet, in order."""
        effects: list[Effect] = []
        for device_id in phone.devices:
            device = self._devices[device_id]
            if not device.connected or self._clock() < device.silent_until_ms:
                continue
            for entry in phone.queue:
                if entry.seq in device.in_flight or device_id not in phone.pending.get(entry.seq, ()):
                    continue
                device.in_flight.add(entry.seq)
                effects += self._send(device, {"type": "msg", "seq": entry.seq, **wire(entry, phone.number)})
        return effects

    def _drop_entry(self, phone: Phone, seq: int) -> None:
        phone.queue = [entry for entry in phone.queue if entry.seq != seq]
        phone.pending.pop(seq, None)

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
        phone.devices.remove(device.id)
        for seq, waiting in list(phone.pending.items()):
            if device.id in waiting:
                waiting.discard(device.id)
                # Stored by every other device: done. With no device left it waits for the next link.
                if not waiting and phone.devices:
                    self._drop_entry(phone, seq)
        device.phone = None
        device.connected = False
        device.in_flight.clear()
        device.browser = device.os = ""
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
