"""Runs a tenant's runtime for the life of its worker process.

The runner owns the hard parts once, for every runtime: waiting for the lease,
the heartbeat that renews it, marking the worker RUNNING, fencing (a process
that lost its lease stops itself) and an orderly stop. It lives on a thread of
its own with its own asyncio loop, started by the worker bootstep
(workers/runtime/step.py); Celery tasks reach it through `current_runner().submit`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from django.conf import settings
from django.utils import timezone

from flowhq.errors import FlowHQError, Unavailable
from workers.lease import Acquire, LocalLease, lease_acquire, lease_release, lease_renew
from workers.runtime.base import Db, Runtime, RuntimeContext
from workers.states import WorkerStatus
from workers.transitions import Superseded, current_worker_transition

log = logging.getLogger(__name__)
RuntimeFactory = Callable[..., Runtime]

_current: RuntimeRunner | None = None


class RuntimeRunner:
    def __init__(self, ctx: RuntimeContext, factory: RuntimeFactory) -> None:
        self.ctx = ctx
        self.factory = factory
        self.lease = LocalLease(settings.STALE_THRESHOLD_MS)
        self.runtime: Runtime | None = None
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name=f"tenant-{ctx.tenant_id}-runtime", daemon=True)
        self._terminating = False
        self.exit_code = 0

    # --- called from Celery's threads -------------------------------------

    def start(self) -> None:
        global _current
        _current = self
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("runtime did not stop in time", extra={"timeout_s": timeout})

    def submit(self, make: Callable[[Runtime], Coroutine[Any, Any, Any]]) -> bool:
        """Schedule `make(runtime)` on the runtime's loop without waiting; False if not running."""
        runtime, loop = self.runtime, self._loop
        if not self.ready.is_set() or runtime is None or loop is None:
            return False
        asyncio.run_coroutine_threadsafe(make(runtime), loop)
        return True

    # --- the runtime thread -----------------------------------------------

    def _thread_main(self) -> None:
        db = Db(f"tenant-{self.ctx.tenant_id}")
        try:
            asyncio.run(self._main(db))
        except Exception:
            log.exception("runtime crashed")
            self.terminate("runtime crashed", exit_code=3)
        finally:
            db.close()

    async def _main(self, db: Db) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            return
        try:
            await self._acquire_lease(db)
        except Superseded as exc:
            self.terminate(f"not started: {exc}")
            return
        if self._stopping.is_set():
            await db(lease_release, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch)
            return
        heartbeat = asyncio.create_task(self._heartbeat_loop(db), name="heartbeat")
        runtime = self.factory(self.ctx, lease=self.lease, db=db, terminate=self.terminate)
        self.runtime = runtime
        try:
            try:
                await runtime.start()
                await db(self._mark_running)
            except (FlowHQError, Superseded) as exc:
                await db(self._mark_failed, str(exc))
                self.terminate(f"runtime could not start: {exc}", exit_code=3)
                return
            self.ready.set()
            log.info("runtime running", extra={"epoch": self.ctx.epoch, "runtime": type(runtime).__name__})
            await self._stopping.wait()
        finally:
            self.ready.clear()
            heartbeat.cancel()
            try:
                await asyncio.wait_for(runtime.stop(), timeout=settings.WORKER_STOP_GRACE_MS / 1000)
            except Exception:
                log.exception("runtime did not stop cleanly")
            self.lease.revoke()
            await db(lease_release, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch)
            log.info("runtime stopped; lease released", extra={"epoch": self.ctx.epoch})

    async def _acquire_lease(self, db: Db) -> None:
        waited_since = time.monotonic()
        logged = 0.0
        assert self._stopping is not None
        while not self._stopping.is_set():
            sent = self.lease.renewal_sent()
            outcome = await db(lease_acquire, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch,
                               ttl_ms=settings.STALE_THRESHOLD_MS)
            if outcome is Acquire.ACQUIRED:
                self.lease.renewed(sent)
                log.info("lease acquired", extra={"epoch": self.ctx.epoch,
                                                   "waited_s": round(time.monotonic() - waited_since, 2)})
                return
            if outcome is Acquire.SUPERSEDED:
                raise Superseded(outcome.value)
            if time.monotonic() - logged > 5:
                logged = time.monotonic()
                log.info("waiting for the previous holder's lease to lapse", extra={"epoch": self.ctx.epoch})
            await self._sleep(0.25)

    async def _heartbeat_loop(self, db: Db) -> None:
        """Renew the lease every interval. A lease that lapses because the runtime is unhealthy
        ends the process (the sweep recovers the tenant); one that lapses because the database
        cannot be reached only stops the process acting (every send checks the lease) until a
        renewal succeeds — a newer process could only have taken over by a new epoch, which the
        renewal would refuse, so resuming is safe, and a database outage restarts nothing."""
        interval = settings.HEARTBEAT_INTERVAL_MS / 1000
        unreachable_since: float | None = None
        while True:
            await asyncio.sleep(interval)
            runtime = self.runtime
            health = await runtime.health() if runtime is not None and self.ready.is_set() else None
            if health is not None and not health.ok:
                log.warning("unhealthy: heartbeat withheld", extra={"detail": health.detail})
                unreachable_since = None
            else:
                sent = self.lease.renewal_sent()
                try:
                    renewed = await db(lease_renew, tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch,
                                       ttl_ms=settings.STALE_THRESHOLD_MS)
                except Exception as exc:
                    log.warning("heartbeat failed", extra={"error": str(exc)[:300]})
                    if unreachable_since is None:
                        unreachable_since = time.monotonic()
                else:
                    if not renewed:
                        self.lease.revoke()
                        self.terminate("superseded: another process now holds this tenant")
                        return
                    self.lease.renewed(sent)
                    if unreachable_since is not None:
                        log.info("database reachable again: lease renewed",
                                 extra={"unreachable_s": round(time.monotonic() - unreachable_since, 1)})
                        unreachable_since = None
                    if runtime is not None and health is not None:
                        await runtime.on_heartbeat(health)
            if not self.lease.valid() and unreachable_since is None:
                self.terminate("lease lapsed: could not heartbeat in time")
                return

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _mark_running(self) -> None:
        current_worker_transition(
            tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch, to=WorkerStatus.RUNNING, reason="runtime running",
            pid=self.ctx.pid, node=self.ctx.node, started_at=timezone.now(), last_error="",
        )

    def _mark_failed(self, reason: str) -> None:
        try:
            current_worker_transition(tenant_id=self.ctx.tenant_id, epoch=self.ctx.epoch, to=WorkerStatus.ERROR,
                                      reason=reason)
        except Superseded:
            pass

    def terminate(self, reason: str, exit_code: int = 0) -> None:
        """End this worker process with a warm shutdown (the bootstep stops us)."""
        if self._terminating:
            return
        self._terminating = True
        self.lease.revoke()
        log.warning("stopping the worker process", extra={"reason": reason, "exit_code": exit_code})
        self.exit_code = exit_code
        os.kill(os.getpid(), signal.SIGTERM)


def current_runner() -> RuntimeRunner:
    if _current is None:
        raise Unavailable("This process is not a tenant worker.")
    return _current

