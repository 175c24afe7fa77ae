"""Which changes are events, and their `data`: the same objects the API returns."""

from __future__ import annotations

from typing import Any

from tenants.api.serializers import ChatPauseOut, MessageLogOut, QrOut, SessionOut
from tenants.models import ChatPause, Direction, MessageLog, MessageStatus, WhatsAppSession
from tenants.states import SessionState
from webhooks.models import EventType
from workers.api.serializers import WorkerOut
from workers.models import WorkerProcess

Event = tuple[str, dict[str, Any]]


def _message(event_type: str, log: MessageLog) -> Event:
    return event_type, {"tenant_id": log.tenant_id, "message": dict(MessageLogOut(log).data)}


def message_logged(log: MessageLog) -> Event | None:
    if log.direction == Direction.IN:
        return _message(EventType.MESSAGE_RECEIVED, log)
    if log.status == MessageStatus.SENT:  # typed on the linked phone: logged as sent
        return _message(EventType.MESSAGE_SENT, log)
    return None  # a reply or an API message waiting to be sent: its event comes when it is


def message_status_changed(log: MessageLog) -> Event | None:
    if log.status == MessageStatus.FAILED:
        return _message(EventType.MESSAGE_FAILED, log)
    if log.direction == Direction.OUT and log.status == MessageStatus.SENT:
        return _message(EventType.MESSAGE_SENT, log)
    return None


def session_changed(session: WhatsAppSession, *, previous: str, changed: frozenset[str]) -> Event | None:
    """A new state, a new QR code, or a new error is an event; other writes (last seen) are not."""
    new_qr = session.state == SessionState.QR_READY and "qr" in changed
    new_error = "last_error" in changed and bool(session.last_error)
    if session.state == previous and not new_qr and not new_error:
        return None
    return EventType.SESSION_STATUS, {
        "tenant_id": session.tenant_id, "previous_state": previous,
        "session": dict(SessionOut(session).data), "qr": QrOut(session).data["qr"],
    }


def worker_status_changed(worker: WorkerProcess, *, previous: str, reason: str) -> Event:
    return EventType.WORKER_STATUS, {
        "tenant_id": worker.tenant_id, "previous_status": previous, "reason": reason,
        "worker": dict(WorkerOut(worker).data),
    }


def chat_paused(pause: ChatPause) -> Event:
    data = ChatPauseOut({"chat": pause.chat, "paused": True, "paused_until": pause.paused_until,
                         "reason": pause.reason}).data
    return EventType.CHAT_PAUSED, {"tenant_id": pause.tenant_id, "pause": dict(data)}


def chat_resumed(*, tenant_id: int, chat: str) -> Event:
    data = ChatPauseOut({"chat": chat, "paused": False, "paused_until": None, "reason": ""}).data
    return EventType.CHAT_RESUMED, {"tenant_id": tenant_id, "pause": dict(data)}


def test_event(*, tenant_id: int, endpoint_id: int) -> Event:
    return EventType.TEST, {"tenant_id": tenant_id, "endpoint_id": endpoint_id,
                            "message": "A test event from FlowHQ: your endpoint receives and verifies webhooks."}
