"""Shared set-up for the benchmarks: a database and Redis of their own, real processes.

Import this before anything Django: it points DATABASE_URL and REDIS_URL at
throwaway resources (created, migrated, and dropped at exit).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def use_throwaway_resources(name: str, redis_db: int = 11, **env: str) -> dict[str, str]:
    """Create database `flowhq_bench_<name>`, migrate it and set up Django on it."""
    import psycopg

    db = f"flowhq_bench_{name}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')

    def drop() -> None:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    atexit.register(drop)
    overrides = {
        "DATABASE_URL": f"{PG}/{db}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "FLOWHQ_DOTENV": "0",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-" + "x" * 40,
        "PORTAL_INTERNAL_KEY": "bench-portal-key",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    os.environ.update(overrides)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowhq.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    redis.Redis.from_url(overrides["REDIS_URL"]).flushdb()
    return overrides


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def simulator(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A simulator of the bench's own (QR codes rotating slowly), once it answers; and its URL."""
    import requests

    port = free_port()
    proc = start([sys.executable, "-m", "simulator", "--port", str(port), "--qr-rotate-ms", "20000"], tmp / "sim.log")
    url = f"http://127.0.0.1:{port}/"

    def answers() -> bool:
        try:
            return requests.get(f"{url}_sim/devices", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_for(answers, 30)
    except TimeoutError:
        stop(proc)
        raise
    return proc, url


async def linked_chromium(sim_url: str, profile: Path, phone: str, options: dict[str, Any]) -> Any:
    """A bare Chromium (the bot's environment, `options` for pyppeteer's launch) on the simulator's page,
    linked to `phone` by the simulator's scan: the floor a tenant's bot is measured against."""
    import requests
    from pyppeteer import launch

    from flowhq.chromium import find_chromium
    from workers.bot.browser_env import chromium_env

    browser = await launch(executablePath=find_chromium(), headless=True, userDataDir=str(profile), env=chromium_env(),
                           handleSIGINT=False, handleSIGTERM=False, handleSIGHUP=False, autoClose=False, **options)
    try:
        page = (await browser.pages())[0]
        await page.goto(sim_url)
        qr = await asyncio.to_thread(wait_for, lambda: next(
            (d["qr"] for d in requests.get(f"{sim_url}_sim/devices", timeout=5).json()
             if d["qr"] and d["phone"] is None), None), 60)
        requests.post(f"{sim_url}_sim/scan", json={"qr": qr, "phone": phone}, timeout=5)
        await page.waitForFunction("() => window.require && window.require('WAWebSocketModel').Socket.state === "
                                   "'CONNECTED'", {"polling": 200, "timeout": 60000})
    except BaseException:
        await browser.close()
        raise
    return browser


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.2f}  p99 {percentile(values, 99):.2f}  "
            f"max {max(values):.2f}  mean {statistics.fmean(values):.2f}")


def fill_worker_rows(rows: int, host: str, *, prefix: str, live_for: Any, **fields: Any) -> None:
    """Up to `rows` tenants, each with a session and a RUNNING worker on `host` whose lease runs
    `live_for` (a timedelta) from now — fleet tables at a size no machine here could run."""
    from django.db import transaction
    from django.utils import timezone

    from tenants.models import Tenant, WhatsAppSession
    from workers.models import FleetHost, WorkerProcess
    from workers.states import DesiredState, WorkerStatus

    FleetHost.objects.update_or_create(name=host, defaults={
        "capacity": max(rows * 2, 100_000), "stale_after": timezone.now() + live_for})
    now = timezone.now()
    with transaction.atomic():
        for first in range(WorkerProcess.objects.count(), rows, 5000):
            batch = range(first, min(rows, first + 5000))
            tenants = Tenant.objects.bulk_create(
                Tenant(name=f"{prefix}{i}", slug=f"{prefix}{i}", status="RUNNING") for i in batch)
            WhatsAppSession.objects.bulk_create(WhatsAppSession(tenant=t) for t in tenants)
            WorkerProcess.objects.bulk_create(WorkerProcess(
                tenant=t, desired_state=DesiredState.RUNNING, status=WorkerStatus.RUNNING, host=host,
                epoch=1, lease_epoch=1, heartbeat_at=now, stale_after=now + live_for,
                lease_expires_at=now + live_for, **{k: v(t) if callable(v) else v for k, v in fields.items()})
                for t in tenants)


def timed_ms(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Milliseconds each of `repeat` calls of `fn` took."""
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out
