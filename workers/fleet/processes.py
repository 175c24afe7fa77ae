"""Operating-system side of the fleet agent: spawn, watch, signal, measure, find.

Each tenant worker is the leader of its own process group (and session), so
everything it starts — Chromium and its helpers — can be signalled, and killed,
as one. Exits are watched through pidfds, which work for adopted processes too
(those an earlier agent spawned), not only for our own children.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import psutil
from django.conf import settings

from workers.fleet import registry

log = logging.getLogger(__name__)

ROLE = "FLOWHQ_ROLE"
PR_SET_CHILD_SUBREAPER = 36


def tenant_worker_args(tenant_id: int, host: str) -> list[str]:
    """`celery -A flowhq` + these = the tenant worker, exec'ed or forked. Measured choices:

    threads pool with one thread: answers `inspect ping` while a task runs
    (solo does not) in one process (prefork needs two); no gossip/mingle:
    ~4-6 Redis connections instead of ~10; heartbeats stay on for Flower;
    `--quiet`: no start-up banner (the bootstep logs one line per start).
    """
    return [
        "--quiet", "worker",
        "-Q", f"tenant.{tenant_id}", "-n", f"tenant-{tenant_id}@{host}",
        "-P", "threads", "-c", "1", "--without-gossip", "--without-mingle",
        "--loglevel", settings.LOG_LEVEL,
    ]


def worker_environment(**tags: str) -> dict[str, str]:
    """The agent's environment, for a tenant worker or the zygote that forks them."""
    return {
        **os.environ,
        **tags,
        # Celery's Django fixup runs Django's system checks in every worker, which loads
        # the whole URLconf (admin, API, OpenAPI): ~23 MB and ~0.2 CPU-s per tenant for
        # nothing a worker serves. The agent's `manage.py fleet` ran them for this host.
        "CELERY_SKIP_CHECKS": "1",
    }


def exec_tenant_worker(tenant_id: int, epoch: int, host: str) -> int:
    """Start a tenant worker as a new program (without the zygote, or when it is down); its pid."""
    env = worker_environment(FLOWHQ_ROLE="tenant", TENANT_ID=str(tenant_id), FLOWHQ_EPOCH=str(epoch),
                             FLOWHQ_HOST=host)
    popen = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "flowhq", *tenant_worker_args(tenant_id, host)],
        env=env, cwd=settings.BASE_DIR, start_new_session=True, stdin=subprocess.DEVNULL, close_fds=True,
    )
    # The exit is collected by the agent's own waitpid; stop Popen from trying too.
    popen.returncode = 0
    return popen.pid


def set_child_subreaper() -> None:
    """Orphans of our workers (a crashed worker's Chromium) are re-parented to us, so we reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            log.warning("could not become a child subreaper", extra={"errno": ctypes.get_errno()})
    except OSError as exc:
        log.warning("could not become a child subreaper", extra={"error": str(exc)})


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_process(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def describe_exit(status: int | None) -> str:
    if status is None:
        return "exited"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def reap(pid: int) -> int | None:
    """Collect the exit status of our child `pid` (None if it is not ours or not done)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if done == pid else None


def reap_orphans(tracked: set[int]) -> None:
    """Reap zombies re-parented to us (a dead worker's Chromium), leaving
    tracked workers to the exit handler, which wants their status."""
    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        if child.pid in tracked:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


@dataclass(frozen=True)
class FoundWorker:
    pid: int
    tenant_id: int
    epoch: int
    create_time: float


def _flowhq_env(proc: psutil.Process) -> dict[str, str] | None:
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        return None
    return env if env.get(ROLE) == "tenant" else None


def find_tenant_processes(host: str) -> tuple[list[FoundWorker], list[int]]:
    """Tenant workers of this host already running, and their stray descendants.

    Returns the group leaders (workers: forked ones from the registry, exec'ed ones by their
    environment) and the pids of other tenant-tagged processes whose group has no live leader
    (orphans of a dead worker; a forked worker's Chromium is tagged like an exec'ed one's).
    """
    leaders = [FoundWorker(pid, tenant_id, epoch, started) for pid, tenant_id, epoch, started in registry.recorded(host)]
    members: list[tuple[int, int]] = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        env = _flowhq_env(proc)
        if env is None or env.get("FLOWHQ_HOST") != host:
            continue
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            continue
        if pgid == proc.pid:
            if any(w.pid == proc.pid for w in leaders):
                continue
            try:
                leaders.append(FoundWorker(proc.pid, int(env["TENANT_ID"]), int(env["FLOWHQ_EPOCH"]), proc.create_time()))
            except (KeyError, ValueError, psutil.Error):
                continue
        else:
            members.append((proc.pid, pgid))
    leader_pids = {w.pid for w in leaders}
    strays = [pid for pid, pgid in members if pgid not in leader_pids]
    return leaders, strays
