"""Throughput and latency of `GET /api/portal/tenant/current/status` under gunicorn.

Creates its own PostgreSQL database (bench/common.py; dropped at the end),
a tenant with a portal member, starts gunicorn (flowhq.wsgi, 2 workers x 8
threads, like the Procfile) on a free loopback port, and drives it for a fixed
time with an asyncio/aiohttp client at a fixed concurrency. Prints requests/s,
p50, p99 and the error count.

    .venv/bin/python bench/bench_portal.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, percentile, use_throwaway_resources

PYTHON = sys.executable
EMAIL = "owner@bench.example"
PATH = "/api/portal/tenant/current/status"


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> Iterator[str]:
    process = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "flowhq.wsgi",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--log-level", "warning",
        ],
        cwd=ROOT, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", process)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn did not answer on {url} within {timeout}s")


async def load(
    url: str, headers: dict[str, str], seconds: float, concurrency: int, warmup: float
) -> tuple[list[float], int, float]:
    """Keep `concurrency` requests in flight for `seconds`; latencies of the measured ones."""
    latencies: list[float] = []
    errors = 0
    measuring_from = time.monotonic() + warmup
    stop_at = measuring_from + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while (started := time.monotonic()) < stop_at:
            try:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except (TimeoutError, aiohttp.ClientError):
                ok = False
            if started >= measuring_from:
                latencies.append(time.monotonic() - started)
                errors += not ok

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return latencies, errors, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    key = secrets.token_urlsafe(32)
    # One portal user at full speed: the per-user API throttle would measure itself, not the portal.
    use_throwaway_resources("portal", PORTAL_INTERNAL_KEY=key, ALLOWED_HOSTS="127.0.0.1",
                            PYTHONWARNINGS="ignore:No directory at", API_THROTTLE_USER="10000000/minute")
    from tenants import services

    services.membership_add(tenant=services.tenant_create(name="Bench Co"), email=EMAIL)
    with gunicorn(dict(os.environ), free_port(), args.workers, args.threads) as base:
        headers = {"X-Portal-Key": key, "X-User-Email": EMAIL}
        latencies, errors, seconds = asyncio.run(
            load(f"{base}{PATH}", headers, args.seconds, args.concurrency, warmup=1.0)
        )

    if not latencies:
        raise SystemExit("no request completed")
    print(f"GET {PATH}: gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, "
          f"{args.concurrency} concurrent clients, {args.seconds:g} s")
    print(f"  requests:  {len(latencies)}  ({len(latencies) / seconds:.0f} req/s)")
    print(f"  latency:   p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    print(f"  errors:    {errors}")


if __name__ == "__main__":
    main()
