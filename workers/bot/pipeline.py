"""The message pipeline: policy → dedup → per-chat queue → template match → rate limit → send → log.

Every step writes the message log, which is also the pipeline's memory: on
ready (after any restart) the pipeline resumes what is still pending — incoming
messages not yet answered and texts not yet sent — so a message that arrived
while the worker was down, or died with it, is answered once it is back.
Nothing the page hands over is forgotten because the database blinked: an
event whose write fails starts a backlog — it and every event after it wait,
in order, and are written once the database answers again, after a catch-up
from the page's own history. An incoming message counts as seen only once its
row is written. A chat whose answer hits a database error retries that
message before the next one in the chat, so per-chat order holds.
Sends are fenced by the lease: a process that may no longer hold the tenant
sends nothing. A reply goes out under a key derived from the message it
answers, and the page is asked for that key before any (re)send.

What a real account receives is sorted by the tenant's policy (tenants/policy.py);
a message the owner types on the phone pauses the bot in that chat (human takeover,
tenants/takeover.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, DataError
from django.utils import timezone

from flowhq.redis_pool import shared_client
from flowhq.text import storable
from tenants.messages import (
    TERMINAL,
    incoming_claim,
    incoming_edit,
    incoming_revoke,
    message_transition,
    phone_message_record,
    reply_claim,
)
from tenants.models import Direction, MessageLog, MessageStatus, Tenant
from tenants.policy import ReplyPolicy, Verdict, decide
from tenants.selectors import (
    logged_ids,
    message_get,
    outgoing_logged,
    pending_messages,
    template_list,
    template_version,
)
from tenants.takeover import chat_pause_active, chat_pause_renew
from tenants.templates import CompiledTemplates, Template, render
from workers.bot.chat_queue import ChatQueues
from workers.bot.dedup import RecentIds
from workers.bot.driver import Delivery, SendFailed, number_of
from workers.bot.rate_limiter import RateLimiter

if TYPE_CHECKING:
    from workers.bot.runtime import BotRuntime

log = logging.getLogger(__name__)
M = MessageStatus
SEND_ATTEMPTS = 3
CHAT_IDLE_SECONDS = 60.0
NOT_ACKNOWLEDGED = "handed to WhatsApp Web; waiting for the server to acknowledge it"
DB_RETRY_MAX_S = 5.0
# Events held while the database is out; beyond this the page's history is the only copy.
BACKLOG_MAX = 10_000
# The chats a text can go to: a number's chat, a LID chat, and (for replies only) a group.
_SENDABLE_CHAT = re.compile(r"[0-9]{5,20}@(c\.us|lid)")
_REPLYABLE_CHAT = re.compile(r"[0-9]{5,20}(-[0-9]{1,20})?@(c\.us|lid|g\.us)")
_TEXT_FIELDS = ("id", "chat", "text", "author", "name")


def _storable_event(data: dict[str, Any]) -> dict[str, Any]:
    """The event with its texts made storable (a NUL or lone surrogate is logged, not lost)."""
    return {**data, **{key: storable(data[key]) for key in _TEXT_FIELDS if isinstance(data.get(key), str)}}


def _retry_delay(attempt: int) -> float:
    return min(DB_RETRY_MAX_S, 0.25 * 2.0 ** min(attempt, 8))


@dataclass(frozen=True)
class BotSettings:
    templates: list[Template]
    tenant_name: str
    rate_limit: int
    policy: ReplyPolicy
    version: tuple[Any, ...]


def _load_settings(tenant_id: int) -> BotSettings:
    # The version first: a change made while the rows are read shows up as a newer version later.
    version = template_version(tenant_id=tenant_id)
    tenant = Tenant.objects.get(pk=tenant_id)
    rows = template_list(tenant_id=tenant_id, enabled_only=True).values("id", "match", "pattern", "body", "priority")
    return BotSettings(
        templates=[Template(**row) for row in rows], tenant_name=tenant.name,
        rate_limit=tenant.rate_limit_per_minute or settings.RATE_LIMIT_MAX_PER_MINUTE,
        policy=ReplyPolicy(reply_in_groups=tenant.reply_in_groups, reply_to_media=tenant.reply_to_media),
        version=version,
    )


def _timestamp(data: dict[str, Any]) -> datetime | None:
    return datetime.fromtimestamp(data["t"], UTC) if data.get("t") else None


def _paused_by_owner(tenant_id: int, chat: str) -> str:
    """Why the bot must keep quiet in `chat` now, or ''."""
    pause = chat_pause_active(tenant_id=tenant_id, chat=chat)
    return f"the owner took this chat over (paused until {pause.paused_until:%H:%M:%S} UTC)" if pause else ""


class MessagePipeline:
    def __init__(self, bot: BotRuntime) -> None:
        self.bot = bot
        self.tenant_id = bot.ctx.tenant_id
        self.recent = RecentIds()
        self.templates = CompiledTemplates([])
        self.tenant_name = ""
        self.rate_limit = settings.RATE_LIMIT_MAX_PER_MINUTE
        self.policy = ReplyPolicy()
        self.names: dict[str, str] = {}
        self.queues: ChatQueues[MessageLog] = ChatQueues(
            self._answer, size=settings.CHAT_QUEUE_SIZE, idle_seconds=CHAT_IDLE_SECONDS
        )
        self.limiter = RateLimiter(shared_client(settings.REDIS_URL), self.tenant_id,
                                   window_ms=settings.RATE_LIMIT_WINDOW_MS)
        self._outbox_lock = asyncio.Lock()
        self._in_flight: set[int] = set()
        # Key ids this process sends: their `add` events (id.fromMe) are ours, not the owner's.
        self._ours: RecentIds = RecentIds()
        self._revoked: RecentIds = RecentIds()
        self._edits: dict[str, str] = {}
        self._settings_version: tuple[Any, ...] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        # Events waiting for the database, oldest first; None while writes go straight through.
        self._backlog: deque[tuple[Callable[[dict[str, Any]], Awaitable[None]], dict[str, Any]]] | None = None
        self._recovery: asyncio.Task[None] | None = None

    # --- entry points -----------------------------------------------------------

    async def on_ready(self) -> None:
        await self.reload_templates()
        await self.resume()
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
                if await self.bot.db(template_version, tenant_id=self.tenant_id) != self._settings_version:
                    log.info("templates changed without a reload nudge")
                    await self.reload_templates()
                await self.resume()
            except Exception:
                log.exception("could not reconcile with the database")

    async def reload_templates(self) -> None:
        loaded = await self.bot.db(_load_settings, self.tenant_id)
        self.templates = CompiledTemplates(loaded.templates)
        self.tenant_name, self.rate_limit, self.policy = loaded.tenant_name, loaded.rate_limit, loaded.policy
        self._settings_version = loaded.version
        log.info("templates loaded", extra={"count": len(loaded.templates), "rate_limit": self.rate_limit,
                                            "groups": self.policy.reply_in_groups, "media": self.policy.reply_to_media})

    # --- events from the page: written in order, or held until they can be ------------

    async def incoming(self, data: dict[str, Any]) -> None:
        """One message the page shows (`driver.describe`), whichever way it went."""
        await self._take(self._incoming, data)

    async def revoked(self, data: dict[str, Any]) -> None:
        await self._take(self._revoked_event, data)

    async def edited(self, data: dict[str, Any]) -> None:
        await self._take(self._edited_event, data)

    async def _take(self, handle: Callable[[dict[str, Any]], Awaitable[None]], data: dict[str, Any]) -> None:
        data = _storable_event(data)
        if self._backlog is not None:
            self._hold(handle, data)
            return
        try:
            await self._refusable(handle, data)
        except DatabaseError as exc:
            self._backlog = deque()
            self._hold(handle, data)
            log.warning("database unavailable: holding WhatsApp events until it is back",
                        extra={"error": str(exc)[:300]})
            self._recover()

    def _hold(self, handle: Callable[[dict[str, Any]], Awaitable[None]], data: dict[str, Any]) -> None:
        assert self._backlog is not None
        if len(self._backlog) >= BACKLOG_MAX:
            self._backlog.popleft()  # still in the page's history: the catch-up finds it
        self._backlog.append((handle, data))

    def _recover(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._drain_backlog(), name="backlog")

    async def _drain_backlog(self) -> None:
        """Once the database answers: catch up from the page's history, then write what was held,
        in order. Events arriving meanwhile join the end of the backlog."""
        attempt = 0
        while self._backlog is not None:
            await asyncio.sleep(_retry_delay(attempt))
            attempt += 1
            try:
                await self._catch_up(self._ingest_now)
                while self._backlog:
                    handle, data = self._backlog[0]
                    await self._refusable(handle, data)
                    self._backlog.popleft()
                self._backlog = None
            except DatabaseError as exc:
                log.warning("database still unavailable; events held",
                            extra={"held": len(self._backlog or ()), "error": str(exc)[:300]})
                continue
            log.info("database back: held events written", extra={"attempts": attempt})

    async def _ingest_now(self, data: dict[str, Any]) -> None:
        await self._refusable(self._incoming, _storable_event(data))

    async def _refusable(self, handle: Callable[[dict[str, Any]], Awaitable[None]], data: dict[str, Any]) -> None:
        """Handle one event; one the database refuses for what it holds (not for being down) is
        skipped, so it cannot hold up the rest for ever."""
        try:
            await handle(data)
        except DataError:
            log.exception("an event the database refused was skipped", extra={"message_id": data.get("id")})

    async def _incoming(self, data: dict[str, Any]) -> None:
        message_id, chat = data.get("id"), data.get("chat")
        if not message_id or not chat:
            return
        if data.get("from_me"):
            await self._from_me(data)
            return
        if message_id in self.recent:
            return
        decision = decide(kind=data.get("kind") or "chat", status=bool(data.get("status")),
                          newsletter=bool(data.get("newsletter")), group=bool(data.get("group")),
                          broadcast=bool(data.get("broadcast")), policy=self.policy)
        if decision.verdict is Verdict.SKIP:
            log.info("not for the bot", extra={"why": decision.reason, "message_id": message_id})
            return
        ignored = decision.reason if decision.verdict is Verdict.IGNORE else ""
        row = await self.bot.db(incoming_claim, tenant_id=self.tenant_id, message_id=message_id, chat=chat,
                                body=data.get("text") or "", wa_timestamp=_timestamp(data),
                                kind=data.get("kind") or "chat", author=data.get("author") or "", ignored=ignored)
        # Seen only now that it is written: a failed write leaves it to be taken again.
        self.recent.seen(message_id)
        if row is None:
            log.info("duplicate message ignored", extra={"message_id": message_id})
            return
        if ignored:
            log.info("message logged, not answered", extra={"why": ignored, "message_id": message_id})
            return
        if data.get("name"):
            self.names[data.get("author") or chat] = data["name"]
        await self._enqueue(row)

    async def _from_me(self, data: dict[str, Any]) -> None:
        """A message from this account: ours (a reply, an API send) or the owner's, typed on the phone."""
        message_id, chat = data["id"], data["chat"]
        if data.get("status") or data.get("newsletter") or data.get("broadcast"):
            return  # the owner's own status or channel post: not a conversation
        if message_id in self._ours or await self.bot.db(outgoing_logged, tenant_id=self.tenant_id,
                                                         message_id=message_id):
            return
        row = await self.bot.db(phone_message_record, tenant_id=self.tenant_id, message_id=message_id, chat=chat,
                                body=data.get("text") or "", kind=data.get("kind") or "chat",
                                wa_timestamp=_timestamp(data))
        if row is None or settings.HUMAN_TAKEOVER_MINUTES <= 0:
            return
        # `t` has whole seconds: a message just received was written within the second after it,
        # one caught up on after a restart at `t`.
        now, stamp = timezone.now(), _timestamp(data)
        written = min(now, stamp + timedelta(seconds=1)) if stamp else now
        until = written + timedelta(minutes=settings.HUMAN_TAKEOVER_MINUTES)
        if until > now:
            await self.bot.db(chat_pause_renew, tenant_id=self.tenant_id, chat=chat, until=until)
            log.info("the owner answered from the phone: the bot keeps quiet in this chat",
                     extra={"chat": chat, "until": until.isoformat()})

    async def _revoked_event(self, data: dict[str, Any]) -> None:
        """The customer deleted a message: not answered if it is still waiting."""
        message_id = data.get("id")
        if not message_id or data.get("from_me"):
            return
        self._revoked.seen(message_id)
        row = await self.bot.db(incoming_revoke, tenant_id=self.tenant_id, message_id=message_id)
        log.info("message deleted by the customer",
                 extra={"message_id": message_id, "was_waiting": row is not None})

    async def _edited_event(self, data: dict[str, Any]) -> None:
        """The customer edited a message: one still waiting is answered by its new text."""
        message_id = data.get("id")
        if not message_id or data.get("from_me"):
            return
        text = data.get("text") or ""
        waiting = await self.bot.db(incoming_edit, tenant_id=self.tenant_id, message_id=message_id, body=text)
        if waiting:
            self._edits[message_id] = text
        log.info("message edited by the customer", extra={"message_id": message_id, "was_waiting": waiting})

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
        """Handle messages WhatsApp Web holds that the log has never seen (both ways: the owner
        may have written from the phone while the bot was down)."""
        if self._backlog is not None:
            return  # the backlog's drain catches up once the database is back
        try:
            await self._catch_up(self.incoming)
        except DatabaseError as exc:
            log.warning("database unavailable during the catch-up; retrying", extra={"error": str(exc)[:300]})
            self._backlog = deque()
            self._recover()

    async def _catch_up(self, take: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        since = time.time() - settings.CATCH_UP_WINDOW_SECONDS
        history = await self.bot.driver.recent_messages(since) if self.bot.driver is not None else []
        ids = [m["id"] for m in history if m.get("id")]
        known = await self.bot.db(logged_ids, tenant_id=self.tenant_id, message_ids=ids) if ids else set()
        missed = [m for m in history if m.get("id")
                  and (m["id"], Direction.OUT if m.get("from_me") else Direction.IN) not in known]
        for message in missed:
            await take(message)
        if missed:
            log.info("caught up on messages from WhatsApp's history", extra={"count": len(missed)})

    async def flush_outbox(self) -> None:
        """Send the texts queued through the send API, oldest first. One row that cannot be
        sent (for a reason that will not change) is marked failed; the rest still go."""
        async with self._outbox_lock:
            for row in await self.bot.db(pending_messages, tenant_id=self.tenant_id):
                if row.direction == Direction.OUT and not row.in_reply_to and row.pk not in self._in_flight:
                    try:
                        await self._deliver(row, reply_to=None)
                    except DatabaseError:
                        raise  # the row stays queued; the reconciler flushes again
                    except Exception as exc:
                        log.exception("send failed unexpectedly", extra={"message_id": row.message_id})
                        await self._fail(row, None, f"could not be sent: {type(exc).__name__}: {exc}")

    def quiet(self) -> bool:
        """Nothing queued, being answered or sent, nor held for the database: a moment at which
        the memory guard may reload the page."""
        return not self._in_flight and self._backlog is None

    async def stop(self) -> None:
        for task in (self._reconciler, self._recovery):
            if task is not None:
                task.cancel()
        await self.queues.stop(grace=5.0)

    # --- per chat -----------------------------------------------------------------

    async def _enqueue(self, row: MessageLog) -> None:
        self._in_flight.add(row.pk)
        if not self.queues.offer(row.chat, row):
            self._in_flight.discard(row.pk)
            await self.bot.db(message_transition, log_id=row.pk, to=M.DROPPED,
                              error=f"chat queue full (CHAT_QUEUE_SIZE={settings.CHAT_QUEUE_SIZE})")
            log.warning("chat queue full: message dropped", extra={"chat": row.chat, "message_id": row.message_id})

    async def _answer(self, incoming: MessageLog) -> None:
        """Answer one message; a database error retries it (the chat's next message waits, so
        order holds), anything else marks it failed and the chat moves on."""
        try:
            attempt = 0
            while True:
                try:
                    await self._answer_once(incoming)
                    self._edits.pop(incoming.message_id, None)
                    return
                except DatabaseError as exc:
                    if self.bot.phase in ("idle", "stopping"):
                        return  # still pending in the log: the next process resumes it
                    log.warning("database error while answering; retrying",
                                extra={"message_id": incoming.message_id, "error": str(exc)[:300]})
                    await asyncio.sleep(_retry_delay(attempt))
                    attempt += 1
                    try:
                        incoming = await self.bot.db(message_get, log_id=incoming.pk)
                    except DatabaseError:
                        continue
                    if incoming.status in TERMINAL:
                        return
                except Exception as exc:
                    log.exception("answering a message failed", extra={"message_id": incoming.message_id})
                    await self._fail(None, incoming, f"{type(exc).__name__}: {exc}")
                    return
        finally:
            self._in_flight.discard(incoming.pk)

    async def _answer_once(self, incoming: MessageLog) -> None:
        if incoming.message_id in self._revoked:
            return  # already REVOKED in the log
        paused = await self.bot.db(_paused_by_owner, self.tenant_id, incoming.chat)
        if paused:
            await self.bot.db(message_transition, log_id=incoming.pk, to=M.IGNORED, error=paused)
            return
        text = self._edits.get(incoming.message_id, incoming.body)
        # The regex engine releases the GIL: a slow pattern does not hold up the event loop.
        template = await asyncio.to_thread(self.templates.match, text)
        if template is None:
            await self.bot.db(message_transition, log_id=incoming.pk, to=M.NO_MATCH)
            return
        person = incoming.author or incoming.chat
        body = render(template.body, name=self.names.get(person, ""), number=number_of(person),
                      tenant=self.tenant_name)
        reply, fresh = await self.bot.db(reply_claim, incoming=incoming, body=body)
        await self._deliver(reply, reply_to=incoming, fresh=fresh)

    async def _not_to_send(self, reply_to: MessageLog | None, *, waited: bool) -> str:
        """Why an auto-reply must not go out after all (deleted, or — after a wait for the rate
        limit — the owner took the chat over meanwhile), or ''."""
        if reply_to is None:
            return ""
        if reply_to.message_id in self._revoked:
            return "not sent: the customer deleted the message"
        return await self.bot.db(_paused_by_owner, self.tenant_id, reply_to.chat) if waited else ""

    async def _deliver(self, out: MessageLog, *, reply_to: MessageLog | None, fresh: bool = False) -> None:
        """Rate limit, send (fenced), and record the outcome on both log rows.

        Unless the row was `fresh`ly claimed by this process (nobody can have sent it), the page
        is asked for our key first: a message WhatsApp Web already holds (sent by an earlier
        process that died, or still waiting for the server) is never sent again, and costs no
        rate-limit slot. The send itself refuses a key the page holds, whatever happened since."""
        self._in_flight.add(out.pk)
        try:
            if out.status in (M.SENT, M.REPLIED):
                if reply_to is not None:
                    await self.bot.db(message_transition, log_id=reply_to.pk, to=M.REPLIED)
                return
            if not (_REPLYABLE_CHAT if reply_to is not None else _SENDABLE_CHAT).fullmatch(out.chat):
                # An old row (from before `to` was checked as it is now) must not block the outbox.
                await self._fail(out, reply_to, f"not sent: {out.chat!r} is not a chat WhatsApp can deliver to")
                return

            async def waiting(wait_ms: int) -> None:
                for row in (out, reply_to):
                    if row is not None and row.status != M.RATE_LIMITED:
                        row.status = M.RATE_LIMITED
                        await self.bot.db(message_transition, log_id=row.pk, to=M.RATE_LIMITED,
                                          error=f"waiting {wait_ms} ms for the rate limit")

            delivery: Delivery | None = None
            error = ""
            for attempt in range(1, SEND_ATTEMPTS + 1):
                if not await self._connected():
                    return  # stays pending; resumed when the bot is ready again
                driver = self.bot.driver
                assert driver is not None  # connected: the page is open
                try:
                    if not (fresh and attempt == 1):
                        delivery = await driver.lookup(out.chat, key_id=out.message_id)
                    if delivery is None:
                        waited = await self.limiter.acquire(self.rate_limit, on_wait=waiting)
                        if not await self._connected():
                            return
                        if why := await self._not_to_send(reply_to, waited=waited > 0):
                            await self._withhold(out, reply_to, why)
                            return
                        self._ours.seen(out.message_id)
                        delivery = await driver.send_text(out.chat, out.body, key_id=out.message_id)
                    break
                except SendFailed as exc:
                    error = str(exc)[:500]
                    log.warning("send failed", extra={"attempt": attempt, "error": error})
                    await asyncio.sleep(attempt)
            if delivery is None:
                await self._fail(out, reply_to, error)
                return
            if not delivery.acknowledged:
                # WhatsApp Web holds it and sends it when it can; the reconciler looks again.
                await self.bot.db(message_transition, log_id=out.pk, to=out.status, error=NOT_ACKNOWLEDGED)
                log.info("message not acknowledged yet", extra={"message_id": out.message_id})
                return
            await self.bot.db(message_transition, log_id=out.pk, to=M.SENT, error="")
            if reply_to is not None:
                await self.bot.db(message_transition, log_id=reply_to.pk, to=M.REPLIED, error="")
        finally:
            self._in_flight.discard(out.pk)

    async def _fail(self, out: MessageLog | None, reply_to: MessageLog | None, why: str) -> None:
        """Mark the rows FAILED with `why` (those still pending: a row already done stays as it is)."""
        for row in (out, reply_to):
            if row is None:
                continue
            current = await self.bot.db(message_get, log_id=row.pk)
            if current.status not in TERMINAL:
                await self.bot.db(message_transition, log_id=row.pk, to=M.FAILED, error=why[:500])
        row = out or reply_to
        log.warning("message failed", extra={"why": why[:300], "message_id": row.message_id if row else ""})

    async def _withhold(self, out: MessageLog, reply_to: MessageLog | None, why: str) -> None:
        await self.bot.db(message_transition, log_id=out.pk, to=M.DROPPED, error=why)
        if reply_to is not None and reply_to.message_id not in self._revoked:
            await self.bot.db(message_transition, log_id=reply_to.pk, to=M.IGNORED, error=why)
        log.info("reply withheld", extra={"why": why, "message_id": out.message_id})

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
