"""Per-tenant counting hooked to what the domain announces (tenants/signals.py).

Every Django process connects these (tenant workers are where messages move), so the
pipeline needs no counting of its own: a message is counted where its status is written.
The receivers run inside the writing transaction; tenants.counters counts after the
commit and never raises.
"""

from __future__ import annotations

from typing import Any

from tenants import counters, signals
from tenants.models import MessageLog


def _message_logged(sender: Any, log: MessageLog, **_: Any) -> None:
    counters.message_counted(log)


def _message_status_changed(sender: Any, log: MessageLog, previous: str, **_: Any) -> None:
    counters.message_counted(log)


def connect() -> None:
    signals.message_logged.connect(_message_logged, dispatch_uid="metrics.message_logged")
    signals.message_status_changed.connect(_message_status_changed, dispatch_uid="metrics.message_status_changed")
