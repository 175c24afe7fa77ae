"""Hands deliveries to the `webhooks` queue. By task name, so services need not import the tasks.

Each message carries the delivery's deadline as a token: the task claims the delivery only while its
deadline is still that value, so of the copies that a retry, the sweep and a redelivered message may
put on the queue, exactly one sends."""

from __future__ import annotations

import logging
from datetime import datetime

log = logging.getLogger(__name__)

QUEUE = "webhooks"
DELIVER = "webhooks.deliver"


def enqueue(delivery_id: int, token: datetime, *, countdown_s: float = 0) -> None:
    """Publish one delivery; a broker outage is logged, not raised: the sweep sends it later."""
    # The project's app by name: in a bot's threads Celery's `current_app` is a default app with
    # another broker, and its retries would hold the bot.
    from flowhq.celery import app

    try:
        app.send_task(DELIVER, args=[delivery_id, token.isoformat()], queue=QUEUE,
                      countdown=countdown_s or None, retry=False)
    except Exception as exc:  # the broker is down: the row is due, the sweep will find it
        log.warning("webhook delivery not queued", extra={"delivery": delivery_id, "why": str(exc)[:200]})
