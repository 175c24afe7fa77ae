"""Hands deliveries to the `webhooks` queue. By task name, so services need not import the tasks.

Each message carries the delivery's deadline as a token: the task claims the delivery only while its
deadline is still that value, so of the copies that the relay and a redelivered message may put on
the queue, exactly one sends."""

from __future__ import annotations

import logging
from datetime import datetime

from flowhq.celery import app

log = logging.getLogger(__name__)

QUEUE = "webhooks"
DELIVER = "webhooks.deliver"


def queued() -> int:
    """Messages waiting on the `webhooks` queue (the relay keeps it shallow)."""
    with app.connection_or_acquire() as conn:
        # Not passive: after a broker restart the queue is unknown until something declares it.
        return int(conn.default_channel.queue_declare(queue=QUEUE, durable=True, auto_delete=False).message_count)


def enqueue(delivery_id: int, token: datetime) -> None:
    """Publish one delivery; a broker outage is logged, not raised: the relay queues it again later."""
    try:
        app.send_task(DELIVER, args=[delivery_id, token.isoformat()], queue=QUEUE, retry=False)
    except Exception as exc:  # the broker is down: once its lease runs out the relay queues it again
        log.warning("webhook delivery not queued", extra={"delivery": delivery_id, "why": str(exc)[:200]})
