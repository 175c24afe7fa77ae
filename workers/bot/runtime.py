"""The WhatsApp bot: one per tenant worker, for the worker's whole life.

It opens the tenant's Chromium on WhatsApp Web and turns what the page says
(through the driver) into the session's state: QR codes to scan, CONNECTED
with the linked number, DISCONNECTED and reconnects with backoff, LOGGED_OUT.
A page that does not load in time is a failed connection attempt; a page that
lacks a module the bot relies on is reported by name and the bot stops using
it (a WhatsApp Web FlowHQ does not speak). Messages go to the message
pipeline; once WhatsApp Web has synced, the pipeline catches up on what the
page holds. The runner
(workers/runtime/runner.py) holds the lease and heartbeats; `health()` lets
the heartbeat report WhatsApp's own connection state from inside the page, so
a live process with a dead WhatsApp socket does not look healthy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.counters import reconnect_attempted
from tenants.models import Tenant, WhatsAppSession
from tenants.services import session_process_gone, session_transition, tenant_transition
from tenants.states import SessionState, TenantStatus
from workers.bot.browser import BrowserHandle, launch_browser
from workers.bot.driver import (
    CONNECTED,
    FAILED_STATES,
    UNPAIRED_STATES,
    DriverEvent,
    ModulesMissing,
    PageNotReady,
    WhatsAppDriver,
)
from workers.bot.memory_guard import guard_memory
from workers.bot.pipeline import MessagePipeline
from workers.bot.qr import QrBudget, qr_data_uri
from workers.bot.reconnect import ReconnectBudget
from workers.models import WorkerProcess
from workers.profile_backups import profile_backup_delete, profile_pack, profile_restore, profile_store
from workers.runtime.base import Health, Runtime
from workers.states import WorkerStatus
from workers.transitions import Superseded, current_worker_transition

log = logging.getLogger(__name__)
S = SessionState

# Phases of the bot (its own view; the session state is the tenant-visible one).
STARTING, QR, READY, RECONNECTING, IDLE, STOPPING = "starting", "qr", "ready", "reconnecting", "idle", "stopping"
RELOADING = "reloading"  # the memory guard's reload or browser restart (workers/bot/memory_guard.py)
PAGE_CONNECT_TIMEOUT_S = 20.0
# The longest a send already at the page may take (driver.send_text: ack timeout + 10 s).
PAGE_IDLE_TIMEOUT_S = 20.0
SESSION_SEEN_EVERY_S = 60.0
# WhatsApp Web writes the new link to IndexedDB just after it connects.
FIRST_BACKUP_AFTER_S = 3.0
WAITING_FOR_SCAN = "waiting for the QR code to be scanned"
# The browser name of the linked device on the phone (its device name is the tenant's name).
DEVICE_BROWSER_NAME = "FlowHQ"
# How long the page may take to say it logged out (Cmd `logout`) after Socket.logout().
LOGOUT_TIMEOUT_S = 10.0


class BotRuntime(Runtime):
    async def start(self) -> None:
        self.phase = STARTING
        self.qr_budget = QrBudget(settings.QR_MAX_UNSCANNED)
        self.reconnect = ReconnectBudget(
            max_attempts=settings.RECONNECT_MAX_ATTEMPTS, base_ms=settings.RECONNECT_BASE_DELAY_MS,
            max_ms=settings.RECONNECT_MAX_DELAY_MS,
        )
        self.events: asyncio.Queue[DriverEvent] = asyncio.Queue()
        self.handle: BrowserHandle | None = None
        self.driver: WhatsAppDriver | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._seen_due = 0.0
        self._linked = False
        self._backups: asyncio.Task[None] | None = None
        self._sync_watch: asyncio.Task[None] | None = None
        self._version = ""
        self._logging_out = False
        self._name: str | None = None
        self._memory_guard = asyncio.create_task(guard_memory(self), name="memory-guard")
        self.pipeline = MessagePipeline(self)
        if settings.SESSION_BACKUP:
            try:
                await self.db(profile_restore, tenant_id=self.ctx.tenant_id)
            except Exception:
                log.exception("could not restore the profile backup; starting from this host's profile")
        self._consumer = asyncio.create_task(self._consume(), name="driver-events")
        try:
            await self._open()
        except ModulesMissing as exc:
            await self._unsupported(exc)
        except PageNotReady as exc:
            await self._on_disconnected(str(exc))

    async def _open(self) -> None:
        self.handle = await launch_browser(self.ctx.tenant_id)
        self.handle.on_crash(lambda: self._post(DriverEvent("browser_crashed", {})))
        self.driver = WhatsAppDriver(self.handle.page, self._post)
        await self.driver.open(settings.WHATSAPP_WEB_URL, device_name=await self._device_name(),
                               browser_name=DEVICE_BROWSER_NAME)
        await self._loaded()

    async def _device_name(self) -> str:
        """The tenant's name, which the phone lists the linked device by (read once; a database
        that does not answer must not keep the browser from opening)."""
        if self._name is None:
            try:
                self._name = await self.db(_tenant_name, self.ctx.tenant_id)
            except Exception as exc:
                log.warning("could not read the tenant's name for the device name", extra={"error": str(exc)})
                return ""
        return self._name

    async def _loaded(self) -> None:
        """Until WhatsApp Web shows its version (recorded on the session); raises PageNotReady or
        ModulesMissing."""
        assert self.driver is not None
        try:
            version = await self.driver.wait_loaded(settings.WHATSAPP_WEB_LOAD_TIMEOUT_MS / 1000)
        finally:
            if self.driver.version and self.driver.version != self._version:
                self._version = self.driver.version
                await self.db(_record_version, self.ctx.tenant_id, self._version)
        log.info("WhatsApp Web loaded", extra={"version": version})

    def _post(self, event: DriverEvent) -> None:
        self.events.put_nowait(event)

    async def _consume(self) -> None:
        while True:
            event = await self.events.get()
            try:
                await self._handle(event)
            except Exception:
                log.exception("failed to handle a WhatsApp event", extra={"kind": event.kind})

    async def _handle(self, event: DriverEvent) -> None:
        if self.phase in (STOPPING, IDLE):
            return
        if event.kind == "qr":
            await self._on_qr(event.data["payload"])
        elif event.kind == "state":
            await self._on_state(event.data.get("state"), event.data.get("wid"))
        elif event.kind == "synced":
            await self._on_synced()
        elif event.kind == "hooks" and event.data.get("missing"):
            await self._unsupported(ModulesMissing(event.data.get("version"), event.data["missing"]))
        elif event.kind == "message":
            await self.pipeline.incoming(event.data)
        elif event.kind == "revoke":
            await self.pipeline.revoked(event.data)
        elif event.kind == "edit":
            await self.pipeline.edited(event.data)
        elif event.kind == "logout":
            await self._on_logout()
        elif event.kind == "error":
            log.warning("error inside WhatsApp Web", extra=event.data)
        elif event.kind == "browser_crashed":
            await self._on_disconnected("Chromium crashed", relaunch=True)

    # --- session states ---------------------------------------------------------

    async def _session(self, to: SessionState, **fields: Any) -> None:
        await self.db(session_transition, tenant_id=self.ctx.tenant_id, to=to, strict=False, **fields)

    async def _tenant(self, to: TenantStatus, reason: str) -> None:
        await self.db(tenant_transition, tenant_id=self.ctx.tenant_id, to=to, reason=reason, strict=False)

    async def _on_qr(self, payload: str) -> None:
        if self.phase in (READY, IDLE, RECONNECTING):
            return
        if not self.qr_budget.new_code(payload):
            await self._go_idle(
                S.QR_TIMEOUT,
                f"{self.qr_budget.limit} QR codes were shown and none was scanned; "
                "show a new QR (or restart the worker) for new ones",
            )
            return
        first = self.phase != QR
        self.phase = QR
        # The reason first: whoever sees QR_READY also sees what the tenant waits for now.
        if first:
            await self._tenant(TenantStatus.STARTING, WAITING_FOR_SCAN)
        await self._session(S.QR_READY, qr=qr_data_uri(payload), qr_issued_at=timezone.now(),
                            qr_count=self.qr_budget.shown, last_error="")
        log.info("QR code ready", extra={"count": self.qr_budget.shown})

    async def _on_state(self, state: str | None, wid: str | None) -> None:
        if state == CONNECTED:
            await self._on_ready(wid)
        elif state == "UNPAIRED_IDLE" and self.phase in (STARTING, QR):
            await self._more_codes()
        elif state in (None, "OPENING", "PAIRING", "UNLAUNCHED") or self.phase not in (READY, RECONNECTING):
            return
        elif await self._page_connected():
            return  # a late event from a page that has since reconnected
        elif state in UNPAIRED_STATES:
            await self._on_logout()
        elif self.phase == READY:
            await self._on_disconnected(f"WhatsApp socket {state}")

    async def _page_connected(self) -> bool:
        try:
            return self.driver is not None and (await self.driver.state(timeout=3)).connected
        except Exception:
            return False

    async def _more_codes(self) -> None:
        """WhatsApp Web stopped rotating codes (UNPAIRED_IDLE): ask for more while the budget lasts."""
        if self.qr_budget.exhausted or self.driver is None:
            return
        try:
            await self.driver.refresh_qr()
        except Exception as exc:
            log.warning("could not ask WhatsApp Web for a new QR code", extra={"error": str(exc)})

    async def _on_ready(self, wid: str | None) -> None:
        if self.phase in (READY, IDLE):
            return
        try:
            state = await self.driver.state() if self.driver is not None else None
        except Exception:
            state = None
        phone = wid or (state.wid if state else None)
        self.phase = READY
        self._linked = True
        self.reconnect.reset()
        self.qr_budget.reset()
        self.connected.set()
        if settings.SESSION_BACKUP and self._backups is None:
            self._backups = asyncio.create_task(self._back_up_periodically(), name="profile-backup")
        await self._session(S.CONNECTED, phone=phone or "", qr="", wa_state=CONNECTED,
                            last_seen_at=timezone.now(), last_error="")
        await self._tenant(TenantStatus.RUNNING, "connected to WhatsApp")
        log.info("connected to WhatsApp", extra={"phone": phone})
        await self.pipeline.on_ready()
        if state is not None and state.synced:
            await self._on_synced()
        elif self._sync_watch is None or self._sync_watch.done():
            self._sync_watch = asyncio.create_task(self._watch_sync(), name="sync-watch")

    async def _on_synced(self) -> None:
        """WhatsApp Web has the messages that waited for it: catch up on those the log lacks."""
        if self.phase == READY:
            await self.pipeline.catch_up()

    async def _watch_sync(self) -> None:
        """A page that connected but never says it synced is listened to anyway."""
        await asyncio.sleep(settings.WHATSAPP_WEB_SYNC_TIMEOUT_MS / 1000)
        try:
            if self.phase != READY or self.driver is None or (await self.driver.state()).synced:
                return
            log.warning("WhatsApp Web connected but never synced; listening to messages anyway")
            await self.driver.install_message_hooks()
            await self.pipeline.catch_up()
        except Exception as exc:
            log.warning("could not listen to an unsynced page", extra={"error": str(exc)})

    async def _on_disconnected(self, reason: str, *, relaunch: bool = False) -> None:
        if self.phase in (RECONNECTING, IDLE, STOPPING):
            return
        self.phase = RECONNECTING
        self.connected.clear()
        log.warning("disconnected from WhatsApp", extra={"reason": reason})
        await self._session(S.DISCONNECTED, wa_state="", last_error=reason)
        await self._tenant(TenantStatus.STARTING, f"reconnecting: {reason}")
        self._reconnecting = asyncio.create_task(self._reconnect(reason, relaunch), name="reconnect")

    async def _reconnect(self, reason: str, relaunch: bool) -> None:
        while self.phase == RECONNECTING:
            delay = self.reconnect.next_delay_ms()
            if delay is None:
                await self._give_up(f"could not reconnect after {self.reconnect.max_attempts} attempts ({reason})")
                return
            log.info("reconnecting", extra={"attempt": self.reconnect.attempts, "delay_ms": delay})
            reconnect_attempted(tenant_id=self.ctx.tenant_id)
            await asyncio.sleep(delay / 1000)
            try:
                if await self._page_connected():
                    await self._on_ready(None)  # WhatsApp Web reconnected by itself
                    return
                if relaunch or self.handle is None or not self.handle.alive():
                    await self._relaunch()
                    relaunch = False
                elif self.driver is not None:
                    await self.driver.reload()
                    await self._loaded()
                if await self._wait_connected(PAGE_CONNECT_TIMEOUT_S):
                    await self._on_ready(None)
                    return
            except ModulesMissing as exc:
                await self._unsupported(exc)
                return
            except Exception as exc:
                log.warning("reconnect attempt failed", extra={"attempt": self.reconnect.attempts, "error": str(exc)})

    async def _wait_connected(self, timeout: float) -> bool:
        """After a reload: True once connected; False at the timeout, or as soon as the page
        itself gives this attempt up (a socket that is refused goes to TIMEOUT at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.phase == RECONNECTING:
            try:
                state = await self.driver.state() if self.driver is not None else None
            except Exception:
                state = None
            if state is not None and state.connected:
                return True
            if state is not None and state.socket in FAILED_STATES:
                return False
            await asyncio.sleep(0.25)
        return False

    async def _relaunch(self) -> None:
        if self.handle is not None:
            await self.handle.close()
        await self._open()

    async def refresh_browser(self, *, restart: bool) -> bool:
        """The memory guard's reload of WhatsApp Web (or restart of Chromium on the same profile,
        which keeps the link), at a quiet moment. Sends wait meanwhile; the page comes back
        through the reconnect path — its CONNECTED makes the bot ready (resume what is pending),
        its `synced` catches up from its history — so what arrived meanwhile is answered after.
        True once the bot is ready again."""
        if self.phase != READY or self.driver is None:
            return False
        self.phase = RELOADING
        self.connected.clear()
        try:
            await self.driver.idle(timeout=PAGE_IDLE_TIMEOUT_S)
            if restart:
                await self._relaunch()
            else:
                await self.driver.reload()
                await self._loaded()
            deadline = time.monotonic() + PAGE_CONNECT_TIMEOUT_S
            while self.phase == RELOADING and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        except ModulesMissing as exc:
            await self._unsupported(exc)
        except Exception as exc:
            log.warning("could not refresh Chromium", extra={"restart": restart, "error": str(exc)})
        if self.phase == RELOADING:
            await self._on_disconnected("WhatsApp Web did not come back after a reload for memory", relaunch=True)
        return self.phase == READY

    async def _give_up(self, reason: str) -> None:
        self.phase = IDLE
        log.error("giving up on WhatsApp", extra={"reason": reason})
        await self._session(S.DISCONNECTED, last_error=reason)
        await self._tenant(TenantStatus.ERROR, reason)
        try:
            await self.db(current_worker_transition, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch,
                          to=WorkerStatus.ERROR, reason=reason)
        except Superseded:
            pass

    async def logout(self) -> None:
        """Unlink this device (asked by an operator or the tenant: workers/linking.py), as
        whatsapp-web.js's `client.logout()` does. The page says `logout` and comes back with a
        fresh QR code, which the bot shows: the session goes LOGGED_OUT, then QR_READY."""
        if self.driver is None or self.phase in (IDLE, STOPPING):
            log.warning("logout asked while the bot is not on WhatsApp Web", extra={"phase": self.phase})
            return
        self._logging_out = True
        try:
            await self.driver.logout()
        except Exception as exc:
            self._logging_out = False
            log.warning("could not log out of WhatsApp Web", extra={"error": str(exc)})
            return
        deadline = time.monotonic() + LOGOUT_TIMEOUT_S
        while self._logging_out and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self._logging_out:
            self._logging_out = False
            log.warning("WhatsApp Web did not confirm the logout", extra={"timeout_s": LOGOUT_TIMEOUT_S})

    async def _on_logout(self) -> None:
        self._linked = False
        await self.db(profile_backup_delete, tenant_id=self.ctx.tenant_id)  # the link it holds is dead
        if self._logging_out:
            await self._logged_out_on_request()
            return
        await self._go_idle(S.LOGGED_OUT, "the phone unlinked this device; restart the worker to link it again")

    async def _logged_out_on_request(self) -> None:
        """Our own logout went through: wait for the page's new QR code with a fresh budget."""
        self._logging_out = False
        self.phase = STARTING
        self.connected.clear()
        self.qr_budget.reset()
        await self._session(S.LOGGED_OUT, phone="", qr="", wa_state="",
                            last_error="logged out from FlowHQ; scan the new QR code to link again")
        await self._tenant(TenantStatus.STARTING, "logged out; waiting for a new QR code")
        log.info("logged out of WhatsApp on request")

    async def _unsupported(self, exc: ModulesMissing) -> None:
        """The page is not the WhatsApp Web this bot speaks: say exactly what is missing, and stop
        using it rather than wait for hooks that cannot come."""
        log.error("WhatsApp Web lacks what the bot relies on", extra={"version": exc.version, "missing": exc.names})
        await self._go_idle(None, f"{exc}; FlowHQ cannot drive this WhatsApp Web (restart the worker after an update)")

    async def _go_idle(self, state: SessionState | None, reason: str) -> None:
        """Stop using WhatsApp until a restart: the tenant sees why (the session keeps its state
        when `state` is None)."""
        if self.phase == IDLE:
            return
        self.phase = IDLE
        self.connected.clear()
        if self._reconnecting is not None and self._reconnecting is not asyncio.current_task():
            self._reconnecting.cancel()
        if state is None:
            await self.db(_record_error, self.ctx.tenant_id, reason)
        else:
            await self._session(state, qr="", wa_state="", last_error=reason)
        await self._tenant(TenantStatus.ERROR, reason)
        log.warning("bot idle", extra={"state": state, "reason": reason})
        if self.driver is not None:
            try:
                await self.driver.blank()
            except Exception:
                pass

    # --- profile backups ------------------------------------------------------------

    async def _back_up_periodically(self) -> None:
        delay = FIRST_BACKUP_AFTER_S
        while True:
            await asyncio.sleep(delay)
            delay = settings.SESSION_BACKUP_INTERVAL_MS / 1000
            if self.phase == READY:
                await self._back_up()

    async def _back_up(self) -> None:
        try:
            data = await asyncio.to_thread(profile_pack, tenant_id=self.ctx.tenant_id)
            if data is not None:
                await self.db(profile_store, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch,
                              host=self.ctx.host, data=data)
        except Exception:
            log.exception("could not back up the profile")

    # --- heartbeat and stop ---------------------------------------------------------

    async def health(self) -> Health:
        if self.phase in (IDLE, RECONNECTING, RELOADING, STOPPING):
            return Health(ok=True, detail=self.phase)
        if self.driver is None:
            return Health(ok=False, detail="no page")
        try:
            state = await self.driver.state(timeout=5)
        except Exception as exc:
            if self.handle is not None and not self.handle.alive():
                self._post(DriverEvent("browser_crashed", {}))
                return Health(ok=True, detail="chromium gone; relaunching")
            return Health(ok=False, detail=f"page does not answer: {exc!r}")
        if self.phase == READY and not state.connected:
            # The socket died and no event said so: the heartbeat is what notices.
            self._post(DriverEvent("state", {"state": state.socket or "UNKNOWN"}))
        return Health(ok=True, detail=self.phase, facts={"wa_state": state.socket})

    async def on_heartbeat(self, health: Health) -> None:
        """Refresh the session's `last_seen_at` — at most once a minute, so that a heartbeat
        costs one UPDATE (the lease) most of the time, however many tenants there are."""
        now = time.monotonic()
        if self.phase == READY and health.facts.get("wa_state") == CONNECTED and now >= self._seen_due:
            self._seen_due = now + SESSION_SEEN_EVERY_S
            await self.db(
                WhatsAppSession.objects.filter(tenant_id=self.ctx.tenant_id).update,
                last_seen_at=timezone.now(), wa_state=CONNECTED,
            )

    async def stop(self) -> None:
        was = self.phase
        self.phase = STOPPING
        self.connected.clear()
        for task in (self._reconnecting, getattr(self, "_consumer", None), getattr(self, "_backups", None),
                     getattr(self, "_sync_watch", None), getattr(self, "_memory_guard", None)):
            if task is not None:
                task.cancel()
        await self.pipeline.stop()
        if self.handle is not None:
            await self.handle.close()
        if settings.SESSION_BACKUP and getattr(self, "_linked", False):
            await self._back_up()  # Chromium is closed: the cleanest copy there is
        await self.db(_session_gone_unless_moved, tenant_id=self.ctx.tenant_id, host=self.ctx.host)
        log.info("bot stopped; chromium closed", extra={"phase": was})


def _session_gone_unless_moved(*, tenant_id: int, host: str) -> None:
    """A stopped bot's session is no longer connected — unless the tenant has moved to another
    host meanwhile (the sweep moved it), whose bot may already be CONNECTED: that session is
    the other host's to report, as it is in the agent's exit handler."""
    with transaction.atomic():
        moved = WorkerProcess.objects.select_for_update().filter(tenant_id=tenant_id).exclude(host=host).exists()
        if moved:
            log.info("session left to the tenant's new host")
        else:
            session_process_gone(tenant_id=tenant_id, why="worker stopped")


def _tenant_name(tenant_id: int) -> str:
    return Tenant.objects.values_list("name", flat=True).get(pk=tenant_id)[:60]


def _record_version(tenant_id: int, version: str) -> None:
    WhatsAppSession.objects.filter(tenant_id=tenant_id).update(wa_version=version[:64], updated_at=timezone.now())


def _record_error(tenant_id: int, reason: str) -> None:
    """The session keeps its state; the reason is what the tenant and the operators see."""
    state = WhatsAppSession.objects.values_list("state", flat=True).get(tenant_id=tenant_id)
    # A QR the bot no longer shows is not waiting for a scan.
    session_transition(tenant_id=tenant_id, to=S.NEW if state == S.QR_READY else S(state), qr="", last_error=reason)


