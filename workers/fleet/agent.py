"""The fleet agent: makes this host's tenant worker processes match the database.

One supervisor thread runs a loop that waits on the pidfds of its children
(so an exit is seen at once) and on a wake pipe (nudges from the control
plane), and on a timer reconciles every tenant placed on this host:

- a tenant that should run here and has no process gets one (at once after a
  stable run, else after the crash back-off, and not beyond the cap of
  consecutive crashes: then ERROR);
- a process whose tenant should not run here any more, or whose epoch is no
  longer current (restart, stop, sweep, move), is stopped: SIGTERM, then
  SIGKILL of its whole process group after WORKER_STOP_GRACE_MS (at once on
  force-restart);
- a process tree over WORKER_MAX_MEMORY_MB is restarted.

The database is the truth, so a lost nudge, an agent restart or a reboot
converges by itself: a restarted agent adopts the workers it finds running
with the current epoch and stops the others.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from flowhq.errors import IllegalTransition
from tenants.services import session_process_gone, tenant_transition
from tenants.states import TenantStatus
from workers import lifecycle
from workers.dbtime import db_now_plus
from workers.fleet import processes
from workers.fleet.backoff import crash_restart_delay_ms, failures_after_crash
from workers.fleet.spawner import spawner_for
from workers.lease import lease_release
from workers.models import FleetHost, WorkerProcess
from workers.process_memory import tree_memory
from workers.runtime_state import wipe_runtime_state
from workers.states import DesiredState, WorkerStatus
from workers.sweep import place_unplaced
from workers.transitions import worker_transition

log = logging.getLogger(__name__)
W = WorkerStatus

_current: FleetAgent | None = None


def current_agent() -> FleetAgent | None:
    return _current


@dataclass
class Child:
    tenant_id: int
    pid: int
    epoch: int
    pidfd: int
    started: float
    ours: bool
    stop_requested_at: float | None = None
    kill_at: float | None = None
    forced: bool = False
    private_mb: float | None = None  # tree USS, last measured (workers/fleet/exporter.py serves it)


class _Changed(Exception):
    """The worker row changed since we read it; the next reconcile decides again."""


class FleetAgent:
    def __init__(self, host: str, capacity: int) -> None:
        self.host = host
        self.capacity = capacity
        self.children: dict[int, Child] = {}
        self.spawner = spawner_for(host)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._nudged: set[int] = set()
        self._nudge_lock = threading.Lock()
        self._not_before: dict[int, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-agent", daemon=True)
        self.grace = settings.WORKER_STOP_GRACE_MS / 1000
        self.interval = settings.HEARTBEAT_INTERVAL_MS / 1000
        self._next_heartbeat = 0.0
        self.memory_check = settings.WORKER_MEMORY_CHECK_MS / 1000
        # Per tenant, since this agent started (workers/fleet/exporter.py serves them).
        self.restarts: Counter[int] = Counter()
        self.crashes: Counter[int] = Counter()

    # --- control from other threads ----------------------------------------

    def start(self) -> None:
        global _current
        _current = self
        self._thread.start()

    def stop(self) -> None:
        """Stop every child gracefully, then the loop (the agent is going away)."""
        self._stopping.set()
        self._wake()
        self._thread.join(self.grace + 30)

    def nudge(self, tenant_id: int) -> None:
        with self._nudge_lock:
            self._nudged.add(tenant_id)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    # --- the loop -----------------------------------------------------------

    def _run(self) -> None:
        processes.set_child_subreaper()
        self.spawner.start()
        self._guarded(self._register)
        self._adopt()
        next_reconcile = 0.0
        next_memory = time.monotonic() + self.memory_check
        while not self._stopping.is_set():
            now = time.monotonic()
            deadlines = [next_reconcile, self._next_heartbeat, next_memory, *self._not_before.values(),
                         *(c.kill_at for c in self.children.values() if c.kill_at)]
            for key, _ in self._selector.select(max(0.0, min(deadlines) - now)):
                if key.data is None:
                    self._drain_wake_pipe()
                else:
                    self._guarded(self._on_exit, key.data)
            now = time.monotonic()
            self._heartbeat_if_due()
            self._enforce_kill_deadlines(now)
            due = {t for t, when in self._not_before.items() if when <= now}
            for tenant_id in due:
                del self._not_before[tenant_id]
            with self._nudge_lock:
                nudged, self._nudged = self._nudged, set()
            if now >= next_reconcile:
                next_reconcile = now + self.interval
                # Tenants that asked to run while no host was live get one now.
                self._guarded(place_unplaced)
                self._guarded(self._reconcile, None)
                processes.reap_orphans({c.pid for c in self.children.values()} | self.spawner.pids())
                self._guarded(self.spawner.tend)
            elif nudged or due:
                self._guarded(self._reconcile, nudged | due)
            if now >= next_memory:
                next_memory = now + self.memory_check
                self._guarded(self._check_memory)
        self._shutdown()

    def _guarded(self, fn: Any, *args: Any) -> None:
        """One failing step (the database is down, say) must not end supervision."""
        try:
            close_old_connections()
            fn(*args)
        except Exception:
            log.exception("fleet agent step failed", extra={"step": getattr(fn, "__name__", str(fn))})

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    # --- host registration ----------------------------------------------------

    def _register(self) -> None:
        FleetHost.objects.update_or_create(
            name=self.host,
            defaults={"capacity": self.capacity, "pid": os.getpid(), "started_at": timezone.now()},
        )
        self._heartbeat()
        log.info("fleet agent registered", extra={"capacity": self.capacity})

    def _heartbeat_if_due(self) -> None:
        """The host's heartbeat, from the supervisor loop itself (so it says the loop is making
        progress), between the steps of a long pass as well as between passes."""
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.interval
            self._guarded(self._heartbeat)

    def _heartbeat(self) -> None:
        updated = FleetHost.objects.filter(name=self.host).update(
            heartbeat_at=Now(), stale_after=db_now_plus(settings.STALE_THRESHOLD_MS), pid=os.getpid()
        )
        if not updated:
            self._register()

    # --- adoption ---------------------------------------------------------------

    def _adopt(self) -> None:
        """Take over the workers an earlier agent of this host left running."""
        leaders, strays = processes.find_tenant_processes(self.host)
        for found in leaders:
            if found.tenant_id in self.children:
                continue
            try:
                pidfd = os.pidfd_open(found.pid)
            except ProcessLookupError:
                continue
            uptime = max(0.0, time.time() - found.create_time)
            self._track(Child(found.tenant_id, found.pid, found.epoch, pidfd, time.monotonic() - uptime, ours=False))
            log.info("adopted a running worker", extra={"tenant": found.tenant_id, "pid": found.pid, "epoch": found.epoch})
        for pid in strays:
            log.warning("killing a stray process of a dead worker", extra={"pid": pid})
            processes.signal_process(pid, signal.SIGKILL)

    def _track(self, child: Child) -> None:
        self.children[child.tenant_id] = child
        self._selector.register(child.pidfd, selectors.EVENT_READ, child)

    # --- reconcile --------------------------------------------------------------

    def _reconcile(self, tenant_ids: set[int] | None) -> None:
        rows = WorkerProcess.objects.filter(Q(host=self.host) | Q(tenant_id__in=list(self.children)))
        if tenant_ids is not None:
            rows = rows.filter(tenant_id__in=tenant_ids)
        by_tenant = {row.tenant_id: row for row in rows}
        scope = set(by_tenant) | (set(self.children) if tenant_ids is None else set(self.children) & tenant_ids)
        for tenant_id in sorted(scope):
            self._heartbeat_if_due()  # a pass over hundreds of tenants must not make this host look dead
            try:
                self._reconcile_one(tenant_id, by_tenant.get(tenant_id))
            except (_Changed, IllegalTransition) as exc:
                log.info("worker changed while reconciling; will look again", extra={"tenant": tenant_id, "why": str(exc)})
                self._not_before[tenant_id] = time.monotonic() + 0.2

    def _wanted_here(self, row: WorkerProcess | None) -> bool:
        return row is not None and row.host == self.host and row.desired_state == DesiredState.RUNNING

    def _reconcile_one(self, tenant_id: int, row: WorkerProcess | None) -> None:
        child = self.children.get(tenant_id)
        if child is not None:
            if child.stop_requested_at is not None:
                if row is not None and row.force_requested and not child.forced:
                    self._kill_now(child)
                return
            if row is None or not self._wanted_here(row) or row.epoch != child.epoch:
                self._stop_child(child, force=bool(row and row.force_requested))
            return
        if row is None or row.host != self.host:
            return
        if row.desired_state == DesiredState.STOPPED:
            if row.status == W.STOPPING:
                self._transition(row, W.STOPPED, "stopped", pid=None)
            return
        if row.consecutive_failures >= settings.WORKER_MAX_CONSECUTIVE_CRASHES:
            return
        if self._not_before.get(tenant_id, 0.0) > time.monotonic():
            return  # backing off after a crash; the loop wakes us when it is time
        if row.status == W.RUNNING or (row.status == W.STARTING and row.pid):
            self._process_gone(row)
            return
        if row.status == W.STOPPING:
            row = self._transition(row, W.STOPPED, "stopped for restart", pid=None)
        self._spawn(row)

    def _transition(self, row: WorkerProcess, to: WorkerStatus, reason: str, **fields: Any) -> WorkerProcess:
        """Move `row` if nobody changed it since we read it (same epoch, still ours)."""

        def unchanged(worker: WorkerProcess) -> None:
            if worker.epoch != row.epoch or worker.host != row.host or worker.desired_state != row.desired_state:
                raise _Changed(f"epoch {row.epoch}->{worker.epoch}")

        return worker_transition(worker_id=row.pk, to=to, reason=reason, guard=unchanged, **fields)

    def _process_gone(self, row: WorkerProcess) -> None:
        """The row says a process runs here, but there is none (we restarted and it died meanwhile)."""
        failures = row.consecutive_failures + 1
        self._crashed(row, failures, f"worker process {row.pid or '?'} is gone")

    def _crashed(self, row: WorkerProcess, failures: int, what: str, uptime_ms: float | None = None) -> None:
        self.crashes[row.tenant_id] += 1
        limit = settings.WORKER_MAX_CONSECUTIVE_CRASHES
        if failures >= limit:
            reason = f"{what}; {failures} crashes in a row, giving up (WORKER_MAX_CONSECUTIVE_CRASHES={limit})"
        else:
            delay = crash_restart_delay_ms(failures, uptime_ms=uptime_ms,
                                           stable_after_ms=settings.WORKER_STABLE_AFTER_MS,
                                           base_ms=settings.WORKER_RESTART_BASE_DELAY_MS,
                                           max_ms=settings.WORKER_RESTART_MAX_DELAY_MS)
            when = f"in {delay / 1000:.1f}s" if delay else "now, after a stable run"
            reason = f"{what}; restarting {when} (crash {failures} in a row)"
            self._not_before[row.tenant_id] = time.monotonic() + delay / 1000
        with transaction.atomic():
            self._transition(row, W.ERROR, reason, consecutive_failures=failures, pid=None)
            if failures >= limit:
                tenant_transition(tenant_id=row.tenant_id, to=TenantStatus.ERROR, reason=reason, strict=False)
        log.warning("worker crashed", extra={"tenant": row.tenant_id, "reason": reason})

    # --- spawn and stop -----------------------------------------------------------

    def _spawn(self, row: WorkerProcess) -> None:
        with transaction.atomic():
            worker = self._transition(
                row, W.STARTING, "spawning worker process",
                epoch=row.epoch + 1, pid=None, node=f"tenant-{row.tenant_id}@{self.host}",
                force_requested=False,
                restart_count=row.restart_count + (1 if row.node else 0),
                stale_after=timezone.now() + timedelta(milliseconds=settings.WORKER_STARTUP_GRACE_MS),
            )
            tenant_transition(tenant_id=row.tenant_id, to=TenantStatus.STARTING, reason="worker starting", strict=False)
        if row.node:
            self.restarts[row.tenant_id] += 1
        if row.force_requested:
            wipe_runtime_state(row.tenant_id)
        pid, how = self.spawner.spawn(worker.tenant_id, worker.epoch)
        WorkerProcess.objects.filter(pk=worker.pk, epoch=worker.epoch).update(pid=pid)
        # Forked or exec'ed, the worker is our child (a forked one is re-parented to us, a
        # subreaper) and a zombie until we wait for it, so its pidfd can always be opened.
        self._track(Child(worker.tenant_id, pid, worker.epoch, os.pidfd_open(pid), time.monotonic(), ours=True))
        log.info("spawned worker", extra={"tenant": worker.tenant_id, "pid": pid, "epoch": worker.epoch, "how": how})

    def _stop_child(self, child: Child, *, force: bool) -> None:
        child.stop_requested_at = time.monotonic()
        if force:
            self._kill_now(child)
            return
        log.info("stopping worker", extra={"tenant": child.tenant_id, "pid": child.pid, "grace_s": self.grace})
        processes.signal_group(child.pid, signal.SIGCONT)  # a stopped (hung) process must see SIGTERM
        processes.signal_process(child.pid, signal.SIGTERM)
        child.kill_at = time.monotonic() + self.grace

    def _kill_now(self, child: Child) -> None:
        child.forced = True
        child.kill_at = None
        log.warning("killing worker process group", extra={"tenant": child.tenant_id, "pid": child.pid})
        processes.signal_group(child.pid, signal.SIGKILL)

    def _enforce_kill_deadlines(self, now: float) -> None:
        for child in list(self.children.values()):
            if child.kill_at is not None and now >= child.kill_at:
                log.warning("worker did not stop within the grace period", extra={"tenant": child.tenant_id})
                self._kill_now(child)

    def _on_exit(self, child: Child) -> None:
        self._selector.unregister(child.pidfd)
        os.close(child.pidfd)
        status = processes.reap(child.pid) if child.ours else None
        # Whatever the worker started (Chromium) goes with it.
        processes.signal_group(child.pid, signal.SIGKILL)
        self.children.pop(child.tenant_id, None)
        self.spawner.forget(child.tenant_id, child.pid)
        lease_release(tenant_id=child.tenant_id, epoch=child.epoch)
        uptime = time.monotonic() - child.started
        what = f"worker process {child.pid} {processes.describe_exit(status)} after {uptime:.1f}s"
        log.info("worker exited", extra={"tenant": child.tenant_id, "what": what})
        row = WorkerProcess.objects.filter(tenant_id=child.tenant_id).first()
        if row is None:
            return
        if row.host == self.host:
            # A process killed outright (SIGKILL, out of memory) could not say so itself. (Moved to
            # another host, the tenant's session is that host's to report.)
            session_process_gone(tenant_id=child.tenant_id, why=f"worker process {processes.describe_exit(status)}")
        if child.stop_requested_at is None and row.epoch == child.epoch and self._wanted_here(row):
            failures = failures_after_crash(row.consecutive_failures, uptime_ms=uptime * 1000,
                                            stable_after_ms=settings.WORKER_STABLE_AFTER_MS)
            self._crashed(row, failures, what, uptime_ms=uptime * 1000)
        elif row.status == W.STOPPING and row.host == self.host:
            reason = "stopped" if row.desired_state == DesiredState.STOPPED else "stopped; to be started again"
            self._transition(row, W.STOPPED, reason, pid=None)
        else:
            # The record must not show a process that no longer exists (an ERROR worker, say).
            WorkerProcess.objects.filter(pk=row.pk, pid=child.pid).update(pid=None)
        self._not_before.setdefault(child.tenant_id, time.monotonic())

    # --- memory ----------------------------------------------------------------------

    def _check_memory(self) -> None:
        limit = settings.WORKER_MAX_MEMORY_MB
        for child in list(self.children.values()):
            self._heartbeat_if_due()
            if child.stop_requested_at is not None:
                continue
            # Private memory (USS), not PSS: a tenant's figure must not move with its neighbours.
            used = child.private_mb = tree_memory(child.pid).private_mb
            if used > limit:
                reason = f"private memory {used:.0f} MB over WORKER_MAX_MEMORY_MB={limit} (whole process tree)"
                log.warning("restarting worker over its memory limit", extra={"tenant": child.tenant_id, "mb": round(used)})
                uptime_ms = (time.monotonic() - child.started) * 1000
                lifecycle.worker_recycle(tenant_id=child.tenant_id, epoch=child.epoch, reason=reason, uptime_ms=uptime_ms)
                self._not_before[child.tenant_id] = time.monotonic()

    # --- shutdown -----------------------------------------------------------------------

    def _shutdown(self) -> None:
        """The agent is stopping: stop every child, leave no orphan, and say so."""
        for child in list(self.children.values()):
            if child.stop_requested_at is None:
                self._guarded(self._mark_stopping, child)
                self._stop_child(child, force=False)
        deadline = time.monotonic() + self.grace + 5
        while self.children and time.monotonic() < deadline:
            for key, _ in self._selector.select(0.2):
                if key.data is not None:
                    self._guarded(self._on_exit, key.data)
            self._enforce_kill_deadlines(time.monotonic())
        for child in list(self.children.values()):
            processes.signal_group(child.pid, signal.SIGKILL)
        self.spawner.stop()
        processes.reap_orphans(set())
        # Tell the sweep at once that this host is gone, so its tenants move.
        self._guarded(lambda: FleetHost.objects.filter(name=self.host).update(stale_after=Now()))
        log.info("fleet agent stopped")

    def _mark_stopping(self, child: Child) -> None:
        row = WorkerProcess.objects.filter(tenant_id=child.tenant_id).first()
        if row is not None and row.status in (W.STARTING, W.RUNNING) and row.epoch == child.epoch:
            self._transition(row, W.STOPPING, f"fleet agent on {self.host} is shutting down")
