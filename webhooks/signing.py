"""Standard Webhooks signatures (standardwebhooks.com): `v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
keyed by the secret's bytes; the secret is handed out as `whsec_<base64>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random

PREFIX = "whsec_"


def secret_new() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def signature(secret: str, *, event_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: list[str], *, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers; one signature per secret (current and, during a rotation, previous)."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, event_id=event_id, timestamp=timestamp, body=body)
                                      for s in secrets),
    }
