"""What FlowHQ counts per tenant, and where the counts go.

A tenant worker adds to Redis hashes scoped by its host (`FLOWHQ_HOST`), through the
in-memory buffer of flowhq/metric_buffer.py: counting never waits on Redis. The host's
fleet agent serves the hashes on `FLEET_METRICS_PORT` (workers/fleet/exporter.py), so
there is one scrape target per host, not per tenant process (docs/architecture.md,
"Metrics"). A message is counted once, when it reaches its final status (the metrics app connects
`message_counted` to the signals of tenants/signals.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from flowhq.redis_metrics import RedisCounter, RedisHistogram
from tenants.messages import TERMINAL
from tenants.models import Direction, MessageLog, MessageStatus

logger = logging.getLogger(__name__)

MESSAGES = RedisCounter(
    "flowhq_tenant_messages",
    "Messages of the tenant that reached their final status (direction in/out, status, source).",
    ("tenant", "direction", "status", "source"),
)
REPLY_LATENCY = RedisHistogram(
    "flowhq_tenant_reply_latency_seconds",
    "From an incoming message being logged to its auto-reply acknowledged by WhatsApp.",
    ("tenant",),
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
RECONNECTS = RedisCounter(
    "flowhq_tenant_reconnects", "Reconnect attempts of the tenant's bot to WhatsApp Web.", ("tenant",)
)
RATE_LIMIT_WAITS = RedisCounter(
    "flowhq_tenant_rate_limit_waits",
    "Outgoing messages that had to wait for the tenant's rate limit.",
    ("tenant",),
)
FAMILIES: tuple[RedisCounter | RedisHistogram, ...] = (MESSAGES, REPLY_LATENCY, RECONNECTS, RATE_LIMIT_WAITS)


def tenant_scope(host: str) -> str:
    return f"tenant:{host}"


def _safely(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:  # a metric must never fail what it counts
        logger.exception("counting failed")


def _after_commit(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Count only what was written: after the commit of the caller's transaction, if any."""
    transaction.on_commit(lambda: _safely(fn, *args, **kwargs))


def message_counted(log: MessageLog) -> None:
    """A log row was written with, or moved to, `log.status`: count it if that status is final
    (and an answered incoming message's latency), or a wait for the rate limit."""
    scope = tenant_scope(settings.FLOWHQ_HOST)
    if log.status == MessageStatus.RATE_LIMITED:
        if log.direction == Direction.OUT:  # the message it answers waits too: count the send once
            _after_commit(RATE_LIMIT_WAITS.inc, scope, log.tenant_id)
        return
    if log.status not in TERMINAL:
        return
    _after_commit(MESSAGES.inc, scope, log.tenant_id, log.direction, log.status, log.source)
    if log.status == MessageStatus.REPLIED and log.created_at is not None and log.completed_at is not None:
        seconds = max(0.0, (log.completed_at - log.created_at).total_seconds())
        _after_commit(REPLY_LATENCY.observe, scope, log.tenant_id, seconds=seconds)


def reconnect_attempted(*, tenant_id: int) -> None:
    _safely(RECONNECTS.inc, tenant_scope(settings.FLOWHQ_HOST), tenant_id)
