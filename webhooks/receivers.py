"""Turns what tenants and workers announce into outbox rows, inside the announcing transaction.

A receiver never fails the change: its writes run in a savepoint, and any error is logged and
dropped (the change matters more than its webhook)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from tenants import signals as tenant_signals
from webhooks import events, services
from workers import signals as worker_signals

log = logging.getLogger(__name__)


def _record(build: Callable[[], events.Event | None], tenant_id: int) -> None:
    try:
        with transaction.atomic():
            event = build()
            if event is not None:
                services.event_record(tenant_id=tenant_id, event_type=event[0], data=event[1])
    except Exception:
        log.exception("webhook event not recorded", extra={"tenant": tenant_id})


def on_message_logged(sender: Any, log: Any, **_: Any) -> None:
    _record(lambda: events.message_logged(log), log.tenant_id)


def on_message_status_changed(sender: Any, log: Any, previous: str, **_: Any) -> None:
    _record(lambda: events.message_status_changed(log), log.tenant_id)


def on_session_changed(sender: Any, session: Any, previous: str, changed: frozenset[str], **_: Any) -> None:
    _record(lambda: events.session_changed(session, previous=previous, changed=changed), session.tenant_id)


def on_worker_status_changed(sender: Any, worker: Any, previous: str, reason: str, **_: Any) -> None:
    _record(lambda: events.worker_status_changed(worker, previous=previous, reason=reason), worker.tenant_id)


def on_chat_paused(sender: Any, pause: Any, **_: Any) -> None:
    _record(lambda: events.chat_paused(pause), pause.tenant_id)


def on_chat_resumed(sender: Any, tenant_id: int, chat: str, **_: Any) -> None:
    _record(lambda: events.chat_resumed(tenant_id=tenant_id, chat=chat), tenant_id)


def connect() -> None:
    uid = "webhooks."
    tenant_signals.message_logged.connect(on_message_logged, dispatch_uid=uid + "message_logged")
    tenant_signals.message_status_changed.connect(on_message_status_changed, dispatch_uid=uid + "message_status")
    tenant_signals.session_changed.connect(on_session_changed, dispatch_uid=uid + "session")
    tenant_signals.chat_paused.connect(on_chat_paused, dispatch_uid=uid + "chat_paused")
    tenant_signals.chat_resumed.connect(on_chat_resumed, dispatch_uid=uid + "chat_resumed")
    worker_signals.worker_status_changed.connect(on_worker_status_changed, dispatch_uid=uid + "worker")
