"""Which forked tenant workers run on this host: one small file per worker.

An exec'ed worker carries its tenant, epoch and host in its environment, and a
restarted agent finds it by reading `/proc/<pid>/environ`. A worker forked by
the zygote cannot: the kernel shows the environment the zygote was started
with. So the agent writes down each worker it forks —
`<FLEET_RUN_DIR>/<host>/tenant-<id>.json` with pid, epoch and the process's
start time (a recycled pid is told apart by it) — and removes the file when
the worker exits. A file whose process is gone or is another process is stale
and removed when read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil
from django.conf import settings

log = logging.getLogger(__name__)


def _folder(host: str) -> Path:
    return Path(settings.FLEET_RUN_DIR) / host


def _file(host: str, tenant_id: int) -> Path:
    return _folder(host) / f"tenant-{tenant_id}.json"


def record(host: str, tenant_id: int, pid: int, epoch: int) -> None:
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        return  # gone already: its exit is seen through the pidfd
    folder = _folder(host)
    folder.mkdir(parents=True, exist_ok=True)
    path = _file(host, tenant_id)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"tenant_id": tenant_id, "pid": pid, "epoch": epoch, "create_time": started}))
    os.replace(partial, path)


def forget(host: str, tenant_id: int, pid: int) -> None:
    """Remove the worker's file if it is still this process's (a newer worker may have replaced it)."""
    path = _file(host, tenant_id)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def recorded(host: str) -> list[tuple[int, int, int, float]]:
    """(pid, tenant_id, epoch, create_time) of the forked workers still running on `host`."""
    found: list[tuple[int, int, int, float]] = []
    folder = _folder(host)
    if not folder.is_dir():
        return found
    for path in folder.glob("tenant-*.json"):
        try:
            entry = json.loads(path.read_text())
            pid, started = int(entry["pid"]), float(entry["create_time"])
            alive = psutil.Process(pid).create_time() == started and os.getpgid(pid) == pid
        except (OSError, ValueError, KeyError, psutil.Error):
            alive = False
        if not alive:
            log.info("forgetting a worker that is no longer running", extra={"file": path.name})
            path.unlink(missing_ok=True)
            continue
        found.append((pid, int(entry["tenant_id"]), int(entry["epoch"]), started))
    return found
