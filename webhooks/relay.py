"""The relay: each `webhooks` worker queues the deliveries that are due, every WEBHOOK_RELAY_INTERVAL_MS.

The change that causes an event only writes rows (the outbox); publishing to the broker happens
here, so a bot's database thread never talks to the broker for a webhook. Due means a first try
just written, a retry whose time came, or a delivery whose queued message or worker was lost
(its lease ran out). Several workers relay at once safely: each takes the due rows it can lock.

The queue is kept shallow (WEBHOOK_QUEUE_DEPTH): what is due waits in the database, not on the
broker, so a backed-up receiver never leaves a message on the queue longer than its lease
(services.QUEUE_LEASE) and the queue never fills with copies."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections

from flowhq.log_throttle import ThrottledWarning
from webhooks import dispatch, services

log = logging.getLogger(__name__)


class Relay(threading.Thread):
    def __init__(self, interval_s: float | None = None) -> None:
        super().__init__(name="webhooks-relay", daemon=True)
        self.interval_s = interval_s if interval_s is not None else settings.WEBHOOK_RELAY_INTERVAL_MS / 1000
        self._stopping = threading.Event()
        # A relay that keeps failing (database or broker down) says so once a minute, not every pass.
        self._failed = ThrottledWarning(log, "webhook relay failed; retrying")

    def run(self) -> None:
        log.info("webhook relay started", extra={"every_ms": int(self.interval_s * 1000)})
        while not self._stopping.is_set():
            more = self.tick()
            if not more:
                self._stopping.wait(self.interval_s)
        connections.close_all()  # this thread's

    def tick(self) -> bool:
        """One pass; True when a full batch was queued (more may be due at once)."""
        try:
            room = min(services.RELAY_BATCH, settings.WEBHOOK_QUEUE_DEPTH - dispatch.queued())
            if room <= 0:
                return False
            queued = services.deliveries_due_enqueue(limit=room)
        except Exception as exc:
            connections.close_all()  # this thread's: a broken connection is replaced on the next pass
            self._failed("relay", exc)
            return False
        return queued >= room

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout_s)
