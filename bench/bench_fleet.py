"""Fleet figures: start-to-RUNNING time, memory, Redis and PostgreSQL connections per tenant
worker (placeholder runtime, no browser), and the cost of heartbeats and of one
stale sweep over 10,000 and 100,000 worker rows.

    .venv/bin/python bench/bench_fleet.py [--sizes 1,10,50] [--rows 10000,100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    fill_worker_rows,
    percentile,
    start,
    stop,
    summary,
    timed_ms,
    use_throwaway_resources,
    wait_for,
)

FAST = {"HEARTBEAT_INTERVAL_MS": "1000", "STALE_THRESHOLD_MS": "5000", "BOT_RUNTIME": "placeholder"}


def fleet_round(n: int, tmp: Path) -> None:
    import psutil
    from django.db import connection

    from tenants.models import Tenant
    from tenants.services import tenant_create
    from workers import lifecycle
    from workers.models import FleetHost, WorkerProcess
    from workers.states import WorkerStatus

    host = f"bench{n}"
    agent = start([sys.executable, "manage.py", "fleet", "--host", host, "--capacity", str(n)],
                  tmp / f"agent-{n}.log", FLOWHQ_HOST=host, **FAST)
    try:
        wait_for(lambda: FleetHost.objects.filter(name=host, pid__isnull=False).exists(), 60)
        tenants = [tenant_create(name=f"bench {n}-{i}") for i in range(n)]
        started: dict[int, float] = {}
        for tenant in tenants:
            started[tenant.pk] = time.monotonic()
            lifecycle.worker_start(tenant_id=tenant.pk)
        ready: dict[int, float] = {}
        deadline = time.monotonic() + 60 + 3 * n
        while len(ready) < n and time.monotonic() < deadline:
            for tenant_id in WorkerProcess.objects.filter(
                tenant__in=tenants, status=WorkerStatus.RUNNING
            ).values_list("tenant_id", flat=True):
                ready.setdefault(tenant_id, time.monotonic())
            time.sleep(0.05)
        if len(ready) < n:
            raise SystemExit(f"only {len(ready)} of {n} workers reached RUNNING")
        times = [ready[t] - started[t] for t in ready]
        time.sleep(3)  # let connections settle
        pss, conns, db_conns = [], [], []
        db_port = int(connection.settings_dict.get("PORT") or 5432)
        for worker in WorkerProcess.objects.filter(tenant__in=tenants):
            proc = psutil.Process(worker.pid)
            family = [proc, *proc.children(recursive=True)]
            pss.append(sum(p.memory_full_info().pss for p in family) / 2**20)
            remote_ports = [c.raddr.port for p in family for c in p.net_connections(kind="tcp") if c.raddr]
            conns.append(remote_ports.count(6379))
            db_conns.append(remote_ports.count(db_port))
        print(f"  {n:>3} tenants: start→RUNNING s  {summary(times)}  (all running after {max(times):.1f}s)")
        print(f"               PSS per worker MB  {summary(pss)}")
        print(f"               Redis conns/worker  {summary([float(c) for c in conns])}")
        print(f"               PostgreSQL conns/worker  {summary([float(c) for c in db_conns])}")
        for tenant in tenants:
            lifecycle.worker_stop(tenant_id=tenant.pk)
        wait_for(lambda: not WorkerProcess.objects.filter(tenant__in=tenants).exclude(
            status=WorkerStatus.STOPPED).exists(), 120)
    finally:
        stop(agent, timeout=120)
        Tenant.objects.filter(name__startswith=f"bench {n}-").delete()
        connection.close()


def sweep_round(rows: int) -> None:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from workers.lease import lease_renew
    from workers.models import WorkerProcess
    from workers.states import WorkerStatus
    from workers.sweep import sweep
    from workers.sweep_watch import KEY, SweepWatch

    fill_worker_rows(rows, "sweep-host", prefix="t", live_for=timedelta(hours=1))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE workers_workerprocess")

    # As on a fleet that has been up for an hour: the sweep judges (workers/sweep_watch.py).
    client = SweepWatch().client
    seconds, _ = client.time()
    client.hset(KEY, mapping={"since": (int(seconds) - 3600) * 1000, "last_ok": int(seconds) * 1000})
    idle = timed_ms(sweep, 20)
    ids = list(WorkerProcess.objects.order_by("?").values_list("tenant_id", flat=True)[:100])
    WorkerProcess.objects.filter(tenant_id__in=ids).update(stale_after=now - timedelta(seconds=1))
    began = time.perf_counter()
    result = sweep()
    stale_ms = (time.perf_counter() - began) * 1000
    WorkerProcess.objects.filter(tenant_id__in=ids).update(status=WorkerStatus.RUNNING, epoch=1,
                                                           stale_after=now + timedelta(hours=1))
    sample = ids[:50]
    beats = timed_ms(lambda: [lease_renew(tenant_id=t, epoch=1, ttl_ms=45000) for t in sample], 5)
    per_beat = [b / len(sample) for b in beats]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT id FROM workers_workerprocess WHERE status IN ('STARTING','RUNNING') "
                       "AND stale_after < now() LIMIT 500")
        plan = cursor.fetchone()[0]
    print(f"  {rows:>7} rows: idle sweep ms {summary(idle)}")
    print(f"                sweep claiming {len(result.stale)} stale workers: {stale_ms:.0f} ms "
          f"({stale_ms / max(1, len(result.stale)):.2f} ms each)")
    print(f"                one heartbeat (UPDATE by tenant) ms p50 {percentile(per_beat, 50):.3f}")
    print(f"                stale query plan: {plan.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--rows", default="10000,100000")
    args = parser.parse_args()
    use_throwaway_resources("fleet", **FAST)
    print("fleet: tenant workers with the placeholder runtime (no browser)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",") if x):
            fleet_round(n, Path(tmp))
    print("sweep and heartbeat cost (PostgreSQL, this machine)")
    for rows in (int(x) for x in args.rows.split(",") if x):
        sweep_round(rows)


if __name__ == "__main__":
    main()
