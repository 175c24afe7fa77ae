"""Keeps a long-lived Chromium's memory bounded: reload the page, or restart the browser.

WhatsApp Web keeps what it received and sent in its own stores (`Msg`, each
chat's `msgs`, the copies behind IndexedDB) for as long as the document
lives, so the Chromium tree grows with every message and gives nothing back
(~20 MB per 1,000 messages against the simulator). FlowHQ may not prune the
page's stores (it uses only what whatsapp-web.js uses), so the bound comes
from the bot's side: every BOT_BROWSER_MEMORY_CHECK_MS the guard measures the
tree's private memory (the sum of its USS, workers/process_memory.py: what
the tenant's own Chromium holds, whatever its neighbours do); over
BOT_BROWSER_RELOAD_MB it waits for a quiet moment (nothing queued, answered
or sent; up to QUIET_WAIT_S, after which the bot holds its sends instead) and reloads WhatsApp Web. A fresh document loads only recent
history. If the tree is still over the limit at the next check, the reload
did not give the memory back and the browser is restarted on the same
profile (the link is on disk). If even that does not help, the limit is below
what the page needs: the guard says so and backs off.

Nothing is lost: the page keeps a message on its disk before it acknowledges
it, messages that arrive during the reload wait on the server, and the
reloaded page comes back through the bot's reconnect path — ready, resume
what is pending, catch up from the page's history once it has synced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings

from workers.process_memory import tree_memory

if TYPE_CHECKING:
    from workers.bot.runtime import BotRuntime

log = logging.getLogger(__name__)
RELOAD, RESTART = "reload", "restart"
QUIET_WAIT_S = 60.0
MAX_BACKOFF_S = 3600.0


class MemoryGuard:
    """What to do about a measurement: nothing, reload the page, or restart the browser."""

    def __init__(self, limit_mb: float, *, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_mb = limit_mb
        self.interval_s = interval_s
        self.clock = clock
        self.last: str | None = None
        self.failures = 0
        self.not_before = float("-inf")

    def due(self, private_mb: float) -> str | None:
        if private_mb <= self.limit_mb:
            self.last, self.failures = None, 0
            return None
        if self.clock() < self.not_before:
            return None
        if self.last is None:
            return RELOAD
        if self.last == RELOAD:
            return RESTART  # the reload did not give the memory back
        # Neither helped: the limit is below what this page needs. Try again, less and less often.
        self.failures += 1
        backoff = min(MAX_BACKOFF_S, self.interval_s * 2 ** min(self.failures + 2, 20))
        self.last, self.not_before = None, self.clock() + backoff
        log.warning("Chromium stays over BOT_BROWSER_RELOAD_MB even after a restart; backing off",
                    extra={"private_mb": round(private_mb), "limit_mb": self.limit_mb, "backoff_s": round(backoff)})
        return None

    def done(self, action: str) -> None:
        self.last = action


async def until_quiet(bot: BotRuntime, timeout: float) -> bool:
    """Until nothing is queued, answered or sent and no page event waits (True), or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bot.events.empty() and bot.pipeline.quiet():
            return True
        await asyncio.sleep(0.1)
    return False


async def guard_memory(bot: BotRuntime) -> None:
    """The bot's memory guard, for the bot's whole life (a task; off when BOT_BROWSER_RELOAD_MB is 0)."""
    limit = settings.BOT_BROWSER_RELOAD_MB
    if limit <= 0:
        return
    interval = settings.BOT_BROWSER_MEMORY_CHECK_MS / 1000
    guard = MemoryGuard(limit, interval_s=interval)
    while True:
        await asyncio.sleep(interval)
        pid = bot.handle.pid if bot.handle is not None else None
        if bot.phase != "ready" or pid is None:
            continue
        try:
            used = await asyncio.to_thread(tree_memory, pid)
            action = guard.due(used.private_mb)
            if action is None:
                continue
            quiet = await until_quiet(bot, QUIET_WAIT_S)
            log.warning("Chromium over its memory limit", extra={
                "action": action, "private_mb": round(used.private_mb), "pss_mb": round(used.pss_mb),
                "limit_mb": limit, "quiet": quiet,
            })
            began = time.monotonic()
            back = await bot.refresh_browser(restart=action == RESTART)
            guard.done(action)
            log.info("Chromium refreshed for memory", extra={
                "action": action, "back": back, "seconds": round(time.monotonic() - began, 2),
            })
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("memory guard failed")
