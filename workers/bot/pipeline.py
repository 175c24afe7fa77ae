"""The message pipeline: dedup → per-chat queue → template match → rate limit → send → log.

Every step writes the message log, which is also the pipeline's memory: on
ready (after any restart) the pipeline resumes what is still pending — incoming
messages not yet answered and texts not yet sent — so a message that arrived
while the worker was down, or died with it, is answered once it is back.
Sends are fenced by the lease: a process that may no longer hold the tenant
sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings

from tenants.messages import (
    incoming_claim,
    message_transition,
    reply_claim,
)
from tenants.models import Direction, MessageLog, MessageStatus, Tenant
from tenants.selectors import logged_incoming_ids, pending_messages, template_list, template_version
from tenants.templates import CompiledTemplates, Template, render
from workers.bot.chat_queue import ChatQueues
from workers.bot.dedup import RecentIds
from workers.bot.driver import SendFailed, number_of
from workers.bot.rate_limiter import RateLimiter

if TYPE_CHECKING:
    from workers.bot.runtime import BotRuntime

log = logging.getLogger(__name__)
M = MessageStatus
SEND_ATTEMPTS = 3
CHAT_IDLE_SECONDS = 60.0


def _load_templates(tenant_id: int) -> tuple[list[Template], str, int, tuple[Any, ...]]:
    # The version first: a change made while the rows are read shows up as a newer version later.
    version = template_version(tenant_id=tenant_id)
    tenant = Tenant.objects.get(pk=tenant_id)
    rows = template_list(tenant_id=tenant_id, enabled_only=True).values("id", "match", "pattern", "body", "priority")
    limit = tenant.rate_limit_per_minute or settings.RATE_LIMIT_MAX_PER_MINUTE
    return [Template(**row) for row in rows], tenant.name, limit, version


class MessagePipeline:
    def __init__(self, bot: BotRuntime) -> None:
        self.bot = bot
        self.tenant_id = bot.ctx.tenant_id
        self.recent = RecentIds()
        self.templates = CompiledTemplates([])
        self.tenant_name = ""
        self.rate_limit = settings.RATE_LIMIT_MAX_PER_MINUTE
        self.names: dict[str, str] = {}
        self.queues: ChatQueues[MessageLog] = ChatQueues(
            self._answer, size=settings.CHAT_QUEUE_SIZE, idle_seconds=CHAT_IDLE_SECONDS
        )
        self.limiter = RateLimiter(settings.REDIS_URL, self.tenant_id, window_ms=settings.RATE_LIMIT_WINDOW_MS)
        self._outbox_lock = asyncio.Lock()
        self._in_flight: set[int] = set()
        self._templates_version: tuple[Any, ...] | None = None
        self._reconciler: asyncio.Task[None] | None = None

    # --- entry points -----------------------------------------------------------

    async def on_ready(self) -> None:
        await self.reload_templates()
        await self.resume()
        await self.catch_up()
        if self._reconciler is None:
            self._reconciler = asyncio.create_task(self._reconcile_periodically(), name="reconcile")

    async def _reconcile_periodically(self) -> None:
        """Nudges are hints; this is what makes losing one cost only latency. A message whose
        handling failed (the database blinked, say) is queued again, and templates changed
        while the reload nudge was lost (the broker was down) are loaded."""
        while True:
            await asyncio.sleep(settings.BOT_RECONCILE_INTERVAL_MS / 1000)
            if not self.bot.connected.is_set():
                continue
            try:
                if await self.bot.db(template_version, tenant_id=self.tenant_id) != self._templates_version:
                    log.info("templates changed without a reload nudge")
                    await self.reload_templates()
                await self.resume()
            except Exception:
                log.exception("could not reconcile with the database")

    async def reload_templates(self) -> None:
        templates, self.tenant_name, self.rate_limit, self._templates_version = await self.bot.db(
            _load_templates, self.tenant_id
        )
        self.templates = CompiledTemplates(templates)
        log.info("templates loaded", extra={"count": len(templates), "rate_limit": self.rate_limit})

    async def incoming(self, data: dict[str, Any]) -> None:
        message_id, chat = data.get("id"), data.get("chat") or data.get("from")
        if not message_id or not chat or self.recent.seen(message_id):
            return
        if data.get("kind", "chat") != "chat":
            log.info("ignoring a non-text message", extra={"kind": data.get("kind")})
            return
        sent_at = datetime.fromtimestamp(data["t"], UTC) if data.get("t") else None
        row = await self.bot.db(incoming_claim, tenant_id=self.tenant_id, message_id=message_id, chat=chat,
                                body=data.get("body", ""), wa_timestamp=sent_at)
        if row is None:
            log.info("duplicate message ignored", extra={"message_id": message_id})
            return
        if data.get("name"):
            self.names[chat] = data["name"]
        await self._enqueue(row)

    async def resume(self) -> None:
        """Pick up what an earlier process (or this one, before a disconnect) left pending."""
        pending = [row for row in await self.bot.db(pending_messages, tenant_id=self.tenant_id) if row.pk not in self._in_flight]
        incoming = [row for row in pending if row.direction == Direction.IN]
        for row in incoming:
            self.recent.seen(row.message_id)
            await self._enqueue(row)
        if any(row.direction == Direction.OUT and not row.in_reply_to for row in pending):
            asyncio.create_task(self.flush_outbox(), name="outbox")
        if pending:
            log.info("resumed pending messages", extra={"count": len(pending)})

    async def catch_up(self) -> None:
        """Handle messages WhatsApp shows in its history that the log has never seen."""
        since = time.time() - settings.CATCH_UP_WINDOW_SECONDS
        history = await self.bot.driver.recent_messages(since) if self.bot.driver is not None else []
        ids = [m["id"] for m in history if m.get("id")]
        known = await self.bot.db(logged_incoming_ids, tenant_id=self.tenant_id, message_ids=ids) if ids else set()
        missed = [m for m in history if m.get("id") and m["id"] not in known]
        for message in missed:
            await self.incoming(message)
        if missed:
            log.info("caught up on messages from WhatsApp's history", extra={"count": len(missed)})

    async def flush_outbox(self) -> None:
        """Send the texts queued through the send API, oldest first."""
        async with self._outbox_lock:
            for row in await self.bot.db(pending_messages, tenant_id=self.tenant_id):
                if row.direction == Direction.OUT and not row.in_reply_to and row.pk not in self._in_flight:
                    await self._deliver(row, reply_to=None)

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
        await self.queues.stop(grace=5.0)
        await self.limiter.close()

    # --- per chat -----------------------------------------------------------------

    async def _enqueue(self, row: MessageLog) -> None:
        self._in_flight.add(row.pk)
        if not self.queues.offer(row.chat, row):
            self._in_flight.discard(row.pk)
            await self.bot.db(message_transition, log_id=row.pk, to=M.DROPPED,
                              error=f"chat queue full (CHAT_QUEUE_SIZE={settings.CHAT_QUEUE_SIZE})")
            log.warning("chat queue full: message dropped", extra={"chat": row.chat, "message_id": row.message_id})

    async def _answer(self, incoming: MessageLog) -> None:
        try:
            template = self.templates.match(incoming.body)
            if template is None:
                await self.bot.db(message_transition, log_id=incoming.pk, to=M.NO_MATCH)
                return
            number = number_of(incoming.chat)
            body = render(template.body, name=self.names.get(incoming.chat, ""), number=number,
                          tenant=self.tenant_name)
            reply = await self.bot.db(reply_claim, incoming=incoming, body=body)
            await self._deliver(reply, reply_to=incoming)
        finally:
            self._in_flight.discard(incoming.pk)

    async def _deliver(self, out: MessageLog, *, reply_to: MessageLog | None) -> None:
        """Rate limit, send (fenced), and record the outcome on both log rows."""
        self._in_flight.add(out.pk)
        try:
            if out.status in (M.SENT, M.REPLIED):
                if reply_to is not None:
                    await self.bot.db(message_transition, log_id=reply_to.pk, to=M.REPLIED)
                return

            async def waiting(wait_ms: int) -> None:
                for row in (out, reply_to):
                    if row is not None and row.status != M.RATE_LIMITED:
                        row.status = M.RATE_LIMITED
                        await self.bot.db(message_transition, log_id=row.pk, to=M.RATE_LIMITED,
                                          error=f"waiting {wait_ms} ms for the rate limit")

            if not await self._connected():
                return  # stays pending; resumed when the bot is ready again
            await self.limiter.acquire(self.rate_limit, on_wait=waiting)
            error = ""
            for attempt in range(1, SEND_ATTEMPTS + 1):
                if not await self._connected():
                    return
                try:
                    await self.bot.driver.send_text(out.chat, out.body, message_id=out.message_id)
                    break
                except SendFailed as exc:
                    error = str(exc)[:500]
                    log.warning("send failed", extra={"attempt": attempt, "error": error})
                    await asyncio.sleep(attempt)
            else:
                await self.bot.db(message_transition, log_id=out.pk, to=M.FAILED, error=error)
                if reply_to is not None:
                    await self.bot.db(message_transition, log_id=reply_to.pk, to=M.FAILED, error=error)
                return
            await self.bot.db(message_transition, log_id=out.pk, to=M.SENT, error="")
            if reply_to is not None:
                await self.bot.db(message_transition, log_id=reply_to.pk, to=M.REPLIED, error="")
        finally:
            self._in_flight.discard(out.pk)

    async def _connected(self) -> bool:
        """Wait until WhatsApp is connected and this process still holds the lease."""
        while not self.bot.connected.is_set():
            if self.bot.phase in ("idle", "stopping"):
                return False
            try:
                await asyncio.wait_for(self.bot.connected.wait(), 1.0)
            except TimeoutError:
                continue
        return self.bot.lease.valid()
