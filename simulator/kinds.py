"""The kinds of message a real WhatsApp account receives, and how each looks on the page.

`POST /_sim/phones/<phone>/messages` takes a `kind`; `parse` checks its fields and `wire` turns a
queued entry into the frame the page turns into `Msg` models — with the ids, servers and fields
WhatsApp Web's own models carry (whatsapp-web.js `src/structures/Message.js` reads them):

| kind | on the page |
|---|---|
| `dm` | `chat` from `<from>@c.us` |
| `lid` | `chat` from `<from>@lid`; the page learns `<pn>@c.us` for it when `pn` is given |
| `group` | `chat` in `<group>@g.us`, `author` (and the key's `participant`) `<from>@c.us` |
| `status` | a status post: `status@broadcast`, `author` the poster |
| `newsletter` | a channel post from `<from>@newsletter` |
| `image` | `image` with `caption`, a JPEG thumbnail as `body`, `directPath`, `mimetype`, … |
| `ciphertext` | `ciphertext` with no body; `decrypt_ms` later the same model becomes `chat` |
| `revoke` / `edit` / `reaction` | of the message `ref` from `from` (in `group`): it turns `revoked`, its body changes, or a reaction row is upserted |
| `own` | typed on the linked phone to `to`: `id.fromMe` true, from the own number |

Pure: no sockets, no clock (the caller passes `t`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("dm", "lid", "group", "status", "newsletter", "image", "ciphertext", "revoke", "edit", "reaction", "own")
# Kinds that act on an earlier message (`ref`) instead of adding one.
ACTIONS = ("revoke", "edit", "reaction")
STATUS_CHAT = "status@broadcast"
MAX_DECRYPT_MS = 60_000
_DIGITS = re.compile(r"[0-9]{5,20}")
# WhatsApp's message ids are letters and digits; '_' would break the serialized key `fromMe_remote_id`.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# An 8×8 JPEG: image messages carry a thumbnail in `body` on the real page, the caption apart.
THUMBNAIL = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDACgcHiMeGSgjISMtKygwPGRBPDc3PHtYXUlkkYCZlo+AjIqgtObDoKrarYqMyP/L"
    "2u71////m8H////6/+b9//j/2wBDASstLTw1PHZBQXb4pYyl+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4+Pj4"
    "+Pj4+Pj4+Pj4+Pj4+Pj/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
    "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
    "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
    "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
    "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwBlFFFUcB//2Q=="
)


class KindError(ValueError):
    """The fields do not make a message of that kind; the message says which and why."""


@dataclass(frozen=True)
class Incoming:
    """A message waiting at the service for a phone's linked page; `seq` is the delivery tag the page
    acknowledges once the message is on its disk."""

    seq: int
    kind: str
    id: str
    fields: dict[str, Any]
    t: int


def _digits(data: dict[str, Any], name: str) -> str:
    value = _string(data, name)
    if not _DIGITS.fullmatch(value):
        raise KindError(f"{name} must be 5 to 20 digits, got {value!r}")
    return value


def _string(data: dict[str, Any], name: str, default: str | None = None) -> str:
    if name not in data:
        if default is None:
            raise KindError(f"missing field {name!r}")
        return default
    value = data[name]
    if not isinstance(value, str):
        raise KindError(f"field {name!r} must be of type str")
    return value


def message_id(value: str, name: str = "id") -> str:
    if not _MESSAGE_ID.fullmatch(value):
        raise KindError(f"{name} must be 1 to 64 letters, digits or '-', got {value!r}")
    return value


def parse(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fields a message of `kind` keeps (validated), without `id`, `kind` and `t`."""
    if kind not in KINDS:
        raise KindError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fields: dict[str, Any] = {"name": _string(data, "name", "")}
    if kind == "own":
        fields["to"] = _digits(data, "to")
    else:
        fields["from"] = _digits(data, "from")
    if kind == "lid" and "pn" in data:
        fields["pn"] = _digits(data, "pn")
    if kind == "group" or (kind in ACTIONS and "group" in data):
        fields["group"] = _digits(data, "group")
    if kind in ACTIONS:
        fields["ref"] = message_id(_string(data, "ref"), "ref")
    if kind == "image":
        fields["caption"] = _string(data, "caption", "")
    elif kind == "reaction":
        fields["body"] = _string(data, "body", "👍")
    elif kind != "revoke":
        fields["body"] = _string(data, "body")
    if kind == "ciphertext":
        after = data.get("decrypt_ms", 500)
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_DECRYPT_MS:
            raise KindError(f"decrypt_ms must be an integer from 0 to {MAX_DECRYPT_MS}")
        fields["decrypt_ms"] = after
    return fields


def lid_of(phone: str) -> str:
    """The LID the service gives a phone number (stable, 15 digits, never the number itself)."""
    return "2" + str(int(hashlib.sha256(phone.encode()).hexdigest()[:16], 16))[-14:].zfill(14)


def _key(from_me: bool, remote: str, id_: str, participant: str | None = None) -> dict[str, Any]:
    key: dict[str, Any] = {"fromMe": from_me, "remote": remote, "id": id_}
    if participant:
        key["participant"] = participant
    return key


def _sender_key(fields: dict[str, Any], id_: str) -> dict[str, Any]:
    """The key of a message the customer `from` sent (in `group`, if any)."""
    sender = f"{fields['from']}@c.us"
    if "group" in fields:
        return _key(False, f"{fields['group']}@g.us", id_, sender)
    return _key(False, sender, id_)


def wire(entry: Incoming, own_number: str) -> dict[str, Any]:
    """The frame (without `type` and `seq`) that the page of `own_number` turns into models."""
    f, me = entry.fields, f"{own_number}@c.us"
    if entry.kind in ACTIONS:
        target = _sender_key(f, f["ref"])
        frame: dict[str, Any] = {"op": entry.kind, "target": target, "t": entry.t,
                                 "key": _key(False, target["remote"], entry.id, target.get("participant"))}
        if entry.kind != "revoke":
            frame["body"] = f["body"]
        return frame
    sender = f"{f.get('from', '')}@c.us"
    msg: dict[str, Any] = {"type": "chat", "body": f.get("body", ""), "t": entry.t, "notifyName": f["name"],
                           "to": me, "from": sender}
    contacts: list[dict[str, str]] = []
    if entry.kind == "own":
        chat = f"{f['to']}@c.us"
        msg.update(key=_key(True, chat, entry.id), **{"from": me, "to": chat, "self": "out", "ack": 1})
    elif entry.kind == "lid":
        lid = f"{f['from']}@lid"
        msg.update(key=_key(False, lid, entry.id), **{"from": lid})
        if "pn" in f:
            contacts.append({"lid": lid, "pn": f"{f['pn']}@c.us"})
    elif entry.kind == "group":
        group = f"{f['group']}@g.us"
        msg.update(key=_key(False, group, entry.id, sender), **{"from": group, "author": sender})
    elif entry.kind == "status":
        msg.update(key=_key(False, STATUS_CHAT, entry.id, sender), **{"from": STATUS_CHAT, "author": sender,
                                                                        "broadcast": True})
    elif entry.kind == "newsletter":
        channel = f"{f['from']}@newsletter"
        msg.update(key=_key(False, channel, entry.id), **{"from": channel})
    else:
        msg["key"] = _key(False, sender, entry.id)
    if entry.kind == "image":
        digest = hashlib.sha256(entry.id.encode()).hexdigest()
        msg.update(type="image", body=THUMBNAIL, caption=f["caption"], mimetype="image/jpeg", size=631,
                   width=8, height=8, directPath=f"/v/t62.7118-24/{digest[:24]}.enc", mediaKey=digest[:44],
                   filehash=digest[20:64])
    elif entry.kind == "ciphertext":
        msg.update(type="ciphertext", body="", decrypt={"type": "chat", "body": f["body"], "after_ms": f["decrypt_ms"]})
    return {"op": "add", "msg": msg, "contacts": contacts}
