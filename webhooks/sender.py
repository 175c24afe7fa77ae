"""One bounded HTTP POST to a checked address: no redirects, a timeout, a bounded response read."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from webhooks.addresses import Target

RESPONSE_READ_BYTES = 64 * 1024
EXCERPT_CHARS = 300
USER_AGENT = "FlowHQ-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str
    excerpt: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout_s: float) -> Outcome:
    """POST `body`; never raises for what the network or the receiver does."""
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target, timeout_s)
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        conn.request("POST", target.path, body=body, headers={
            **headers, "content-type": "application/json", "user-agent": USER_AGENT,
        })
        response = conn.getresponse()
        text = response.read(RESPONSE_READ_BYTES).decode("utf-8", errors="replace")
        return Outcome(response.status, elapsed(), "", text[:EXCERPT_CHARS])
    except TimeoutError:
        return Outcome(None, elapsed(), f"timed out after {int(timeout_s * 1000)} ms", "")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500], "")
    finally:
        conn.close()
