"""Server-Sent Events: a tenant's status and QR code, pushed as they change.

The portal opens one `EventSource` on `/api/portal/tenant/current/events` and
shows a new QR code the moment the bot rotates it, without polling the API.

The bot writes its state to the database, so the stream polls the database
(every `PORTAL_SSE_POLL_MS`) and sends an event only when something changed:

- `status`: the same body as `GET /status`, when the tenant, session, worker or
  setup request row changed (their `updated_at`);
- `qr`: the same body as `GET /qr`, when the session's state or QR changed
  (`state`, `qr_issued_at`, the QR itself);
- `gone`: the user lost their membership; the stream ends.
- `activity` (only when the stream is asked for `live_messages`, as the portal web app's is):
  the newest messages of the log and the chats paused by human takeover, when any of them
  changed (`{"messages": [log entry, ...], "paused": [{chat, paused_until, reason}, ...]}`);
  one indexed query each (`message_log_newest`, `chat_pause_tenant_until`).

A comment line goes out every `PORTAL_SSE_KEEPALIVE_SECONDS` so proxies keep
the connection open and a client that went away is noticed (the write fails).
A stream holds one web server thread, so it ends after
`PORTAL_SSE_LIFETIME_SECONDS` (the `retry:` hint makes the browser reconnect),
and a web process serves at most `PORTAL_SSE_MAX_STREAMS` at once: beyond that
a new stream is refused with 503 `too_many_streams` and `Retry-After`, so open
portal tabs can never take every thread from the API (the portal polls
`/status` and `/qr` meanwhile).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection
from rest_framework.utils.encoders import JSONEncoder

from flowhq.api.exceptions import error_body
from flowhq.errors import Unavailable
from portal.serializers import status_data
from tenants import selectors
from tenants.api.serializers import MessageLogOut, QrOut
from tenants.models import WhatsAppSession
from tenants.takeover import chat_pause_list


class TooManyStreams(Unavailable):
    code = "too_many_streams"

    def __init__(self, *, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            "This server is serving as many live streams as it may; poll /status and /qr, "
            "or try the stream again later.", details={"limit": limit},
        )
        self.retry_after_seconds = retry_after_seconds


class StreamSlots:
    """The event streams one web process serves at once, bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = 0

    def take(self, *, limit: int, retry_after_seconds: int) -> Callable[[], None]:
        """A slot, or TooManyStreams; call what is returned (any number of times) to give it back."""
        with self._lock:
            if self.in_use >= limit:
                raise TooManyStreams(limit=limit, retry_after_seconds=retry_after_seconds)
            self.in_use += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self.in_use -= 1

        return give_back


SLOTS = StreamSlots()


class HeldStream:
    """A stream that holds a slot until the server closes the response, whether or not
    it was ever iterated (a generator's `finally` would not run if it never started)."""

    def __init__(self, stream: Iterator[str], give_back: Callable[[], None]) -> None:
        self._stream = stream
        self._give_back = give_back

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._stream
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._give_back()


def sse(event: str, data: Any) -> str:
    """One SSE message; the JSON is on one line, so one `data:` field carries it."""
    return f"event: {event}\ndata: {json.dumps(data, cls=JSONEncoder, separators=(',', ':'))}\n\n"


def tenant_events(
    *,
    email: str,
    poll_seconds: float,
    keepalive_seconds: float,
    lifetime_seconds: float,
    retry_ms: int,
    live_messages: int = 0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """The event stream of the tenant that `email` is a member of, for at most `lifetime_seconds`;
    with `live_messages`, `activity` events carry that many of the newest log entries."""
    started = last_write = clock()
    last_status: tuple[Any, ...] | None = None
    last_qr: tuple[Any, ...] | None = None
    last_activity: tuple[Any, ...] | None = None
    try:
        yield f"retry: {retry_ms}\n\n"
        while True:
            tenant = selectors.tenant_for_member(email=email)
            if tenant is None:
                yield sse("gone", error_body("no_tenant", "You are not a member of any tenant."))
                return
            setup_request = selectors.setup_request_latest(email=email)
            session: WhatsAppSession | None = getattr(tenant, "session", None)
            worker = getattr(tenant, "worker", None)

            status_key = (
                tenant.pk,
                tenant.updated_at,
                session.updated_at if session else None,
                worker.updated_at if worker else None,
                (setup_request.pk, setup_request.updated_at) if setup_request else None,
            )
            if status_key != last_status:
                last_status = status_key
                last_write = clock()
                yield sse("status", status_data(tenant=tenant, setup_request=setup_request))

            shown = session or WhatsAppSession(tenant=tenant)
            qr_key = (tenant.pk, shown.state, shown.qr_issued_at, shown.qr)
            if qr_key != last_qr:
                last_qr = qr_key
                last_write = clock()
                yield sse("qr", QrOut(shown).data)

            if live_messages:
                activity_key, activity = _activity(tenant_id=tenant.pk, newest=live_messages)
                if activity_key != last_activity:
                    last_activity = activity_key
                    last_write = clock()
                    yield sse("activity", activity)

            now = clock()
            if now - started >= lifetime_seconds:
                yield ": lifetime reached, reconnect\n\n"
                return
            if now - last_write >= keepalive_seconds:
                last_write = now
                yield ": keep-alive\n\n"
            sleep(poll_seconds)
    finally:
        _release_connection()


def _activity(*, tenant_id: int, newest: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The tenant's newest messages and running pauses, and what tells whether they changed."""
    messages = list(selectors.message_log_list(tenant_id=tenant_id)[:newest])
    pauses = list(chat_pause_list(tenant_id=tenant_id))
    key = (
        tenant_id,
        tuple((m.pk, m.updated_at) for m in messages),
        tuple((p.chat, p.paused_until) for p in pauses),
    )
    data = {
        "messages": MessageLogOut(messages, many=True).data,
        "paused": [{"chat": p.chat, "paused_until": p.paused_until, "reason": p.reason} for p in pauses],
    }
    return key, data


def _release_connection() -> None:
    """Give the thread's database connection back now, not at the next request.

    Inside an atomic block (a test's transaction) the connection is not ours to close.
    """
    if not connection.in_atomic_block:
        connection.close()
