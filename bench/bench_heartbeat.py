"""Heartbeat figures: what N tenants' steady heartbeats cost PostgreSQL (the lease renewal,
`workers.lease.lease_renew` itself, one UPDATE by unique key) against the alternative of
liveness in Redis (`SET key PX ttl` per tenant), and what the stale sweep costs in each design.

Each simulated tenant is a schedule, not a process: threads with one connection each (as a
worker holds one) call the real `lease_renew` (or SET) for their share of the tenants, every
tenant once per `--interval-ms`, evenly spread. The figures are taken over a window after a
warm-up of two intervals; per-renewal figures (WAL bytes, tuples) do not depend on the
interval, per-second figures are also given scaled to HEARTBEAT_INTERVAL_MS's default (15 s).

The workers table is measured in three shapes, rebuilt (VACUUM FULL) before each:
  index   the partial index `worker_stale_live` on stale_after (main before this bench): every
          renewal moves an indexed column, so none can be a HOT update;
  hot     no index on the deadline, default fillfactor: a renewal changes no indexed column;
  hot+ff  the same with fillfactor 70, so the new row version fits on its page from the start.

PostgreSQL: backend CPU of the heartbeat connections (/proc/<pid>/stat), WAL written for this
database's relations (pg_walinspect over the window: exact, not the server's total, which other
work on a shared server inflates), n_tup_upd / n_tup_hot_upd / n_dead_tup / autovacuum runs of
the table (pg_stat_user_tables), table and index growth, and the statement's latency as the
worker sees it (ORM call + round trip + commit). Redis: server CPU (INFO cpu, minus an idle
window measured just before: the server is shared), SET's own usec per call (INFO
commandstats), latency.

    .venv/bin/python bench/bench_heartbeat.py [--sizes 500,1000] [--interval-ms 2000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fill_worker_rows, percentile, timed_ms, use_throwaway_resources

TABLE = "workers_workerprocess"
TICK = os.sysconf("SC_CLK_TCK")
DEFAULT_INTERVAL_S = 15.0
SHAPES = {
    "index": "partial index on stale_after (before)",
    "hot": "no deadline index, fillfactor 100",
    "hot+ff": "no deadline index, fillfactor 70 (after)",
}


@dataclass
class Window:
    seconds: float = 0.0
    calls: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class Beats:
    """`threads` threads, each calling `beat(tenant_id)` for its share of the tenants once per interval."""

    def __init__(self, tenant_ids: list[int], interval: float, threads: int, beat: Any,
                 on_start: Any = None, on_stop: Any = None) -> None:
        self.ids, self.interval, self.beat = tenant_ids, interval, beat
        self.on_start, self.on_stop = on_start, on_stop
        self.stop_at = threading.Event()
        self.recording = threading.Event()
        self.lock = threading.Lock()
        self.window = Window()
        self.pids: list[int] = []
        self.errors: list[str] = []
        self.t0 = time.monotonic() + 0.5
        self.threads = [threading.Thread(target=self._run, args=(j, threads), daemon=True) for j in range(threads)]

    def _run(self, j: int, stride: int) -> None:
        pid = self.on_start() if self.on_start else None
        if pid:
            with self.lock:
                self.pids.append(pid)
        mine = self.ids[j::stride]
        n = len(self.ids)
        k = 0
        try:
            while not self.stop_at.is_set():
                for m, tenant_id in enumerate(mine):
                    due = self.t0 + k * self.interval + (j + m * stride) / n * self.interval
                    wait = due - time.monotonic()
                    if wait > 0 and self.stop_at.wait(wait):
                        return
                    began = time.perf_counter()
                    self.beat(tenant_id)
                    took = (time.perf_counter() - began) * 1000
                    if self.recording.is_set():
                        with self.lock:
                            self.window.calls += 1
                            self.window.latencies_ms.append(took)
                            self.window.lag_ms.append(max(0.0, -wait * 1000))
                k += 1
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            if self.on_stop:
                self.on_stop()

    def __enter__(self) -> Beats:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_at.set()
        for thread in self.threads:
            thread.join(30)


# --- PostgreSQL -------------------------------------------------------------

WAL_SLOT = "flowhq_bench_heartbeat"  # temporary: gone with the session if the run dies


def sql(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def ensure_rows(n: int, ttl_ms: int) -> list[int]:
    from datetime import timedelta

    from django.utils import timezone

    from workers.models import WorkerProcess

    now = timezone.now()
    fill_worker_rows(n, "hb-host", prefix="hb", live_for=timedelta(milliseconds=ttl_ms),
                     node=lambda t: f"tenant-{t.pk}@hb-host", pid=lambda t: 10_000 + t.pk, started_at=now)
    return list(WorkerProcess.objects.order_by("tenant_id").values_list("tenant_id", flat=True)[:n])


def set_shape(shape: str) -> None:
    sql("DROP INDEX IF EXISTS worker_stale_live")
    if shape == "index":
        sql(f"CREATE INDEX worker_stale_live ON {TABLE} (stale_after) WHERE status IN ('STARTING', 'RUNNING')")
    sql(f"ALTER TABLE {TABLE} SET (fillfactor = {70 if shape == 'hot+ff' else 100})")
    sql(f"VACUUM FULL {TABLE}")
    sql(f"ANALYZE {TABLE}")


def table_stats() -> dict[str, int]:
    (row,) = sql("SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count, vacuum_count, "
                 "pg_relation_size(relid), pg_indexes_size(relid) FROM pg_stat_user_tables WHERE relname = %s",
                 [TABLE])
    keys = ["upd", "hot", "dead", "autovacuum", "vacuum", "heap_bytes", "index_bytes"]
    return dict(zip(keys, (int(v) for v in row), strict=True))


def wal_of_this_database(start: str, end: str) -> dict[str, int]:
    """WAL records between two LSNs that touch this database's relations, plus the commit records
    of their transactions; by relation kind (heap / index), with full-page images apart."""
    rows = sql("""
        WITH r AS (
            SELECT xid, resource_manager, record_length, fpi_length,
                   substring(block_ref from %(pat)s)::oid AS relfilenode
            FROM pg_get_wal_records_info(%(start)s, %(end)s)
        ), mine AS (SELECT DISTINCT xid FROM r WHERE relfilenode IS NOT NULL AND xid <> '0')
        SELECT coalesce(c.relkind::text, CASE WHEN r.relfilenode IS NULL THEN 'x' ELSE '?' END),
               count(*), sum(r.record_length), sum(r.fpi_length)
        FROM r LEFT JOIN pg_class c ON c.relfilenode = r.relfilenode
        WHERE r.relfilenode IS NOT NULL OR (r.resource_manager = 'Transaction' AND r.xid IN (SELECT xid FROM mine))
        GROUP BY 1
    """, {"pat": r"rel \d+/" + str(db_oid()) + r"/(\d+)", "start": start, "end": end})
    out = {"records": 0, "bytes": 0, "fpi_bytes": 0, "heap_bytes": 0, "index_bytes": 0, "commit_bytes": 0}
    for kind, count, length, fpi in rows:
        out["records"] += int(count)
        out["bytes"] += int(length)
        out["fpi_bytes"] += int(fpi)
        out[{"r": "heap_bytes", "t": "heap_bytes", "i": "index_bytes", "x": "commit_bytes"}.get(kind, "heap_bytes")] += (
            int(length))
    return out


_oid: int | None = None


def db_oid() -> int:
    global _oid
    if _oid is None:
        _oid = int(sql("SELECT oid FROM pg_database WHERE datname = current_database()")[0][0])
    return _oid


def stale_query() -> list[Any]:
    """The sweep's liveness read, as claim_stale_workers issues it (nothing is stale: the idle sweep)."""
    from django.db.models.functions import Now

    from workers.models import WorkerProcess
    from workers.states import LIVE_STATUSES

    return list(WorkerProcess.objects.filter(status__in=LIVE_STATUSES, stale_after__lt=Now())
                .exclude(host__in=[""]).values_list("pk", "tenant_id", "heartbeat_at", "started_at",
                                                    "consecutive_failures")[:500])


def db_round(shape: str, ids: list[int], interval: float, seconds: float, threads: int, ttl_ms: int) -> Window:
    from django.db import connection

    from workers.lease import lease_renew

    set_shape(shape)

    def started() -> int:
        return int(sql("SELECT pg_backend_pid()")[0][0])

    def renew(tenant_id: int) -> None:
        if not lease_renew(tenant_id=tenant_id, epoch=1, ttl_ms=ttl_ms):
            raise RuntimeError(f"renewal of {tenant_id} matched no row")

    with Beats(ids, interval, threads, renew, on_start=started, on_stop=lambda: connection.close()) as beats:
        time.sleep(0.5 + 2 * interval)  # every row renewed twice: the steady state
        cpu0 = sum(proc_cpu_s(p) for p in beats.pids)
        # Keeps the window's WAL until it is read: a checkpoint meanwhile would recycle it.
        sql("SELECT pg_create_physical_replication_slot(%s, true, true)", [WAL_SLOT])
        stats0, lsn0 = table_stats(), sql("SELECT pg_current_wal_lsn()::text")[0][0]
        began = time.monotonic()
        beats.recording.set()
        time.sleep(seconds)
        beats.recording.clear()
        window = beats.window
        window.seconds = time.monotonic() - began
        window.cpu_s = sum(proc_cpu_s(p) for p in beats.pids) - cpu0
        lsn1 = sql("SELECT pg_current_wal_lsn()::text")[0][0]
        window.extra["sweep_ms"] = timed_ms(stale_query, 100)  # while the renewals go on
        window.extra["plan"] = plan()
    if beats.errors:
        raise SystemExit(f"heartbeats failed: {beats.errors[:3]}")
    time.sleep(1.5)  # backends flush their table statistics when idle, at most once a second
    stats1 = table_stats()
    window.extra["stats"] = {k: stats1[k] - stats0[k] for k in stats0} | {
        "dead_end": stats1["dead"], "heap_end": stats1["heap_bytes"], "index_end": stats1["index_bytes"]}
    window.extra["wal"] = wal_of_this_database(lsn0, lsn1)
    sql("SELECT pg_drop_replication_slot(%s)", [WAL_SLOT])
    return window


def plan() -> str:
    lines = sql(f"EXPLAIN SELECT id FROM {TABLE} WHERE status IN ('STARTING','RUNNING') AND stale_after < now() "
                "AND NOT host = '' LIMIT 500")
    scan = next((line for (line,) in lines if "Scan" in line), lines[-1][0])
    return scan.strip(" ->").split("  (")[0]


# --- Redis --------------------------------------------------------------------

def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def redis_set_stats(client: Any) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_set", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def redis_round(ids: list[int], interval: float, seconds: float, threads: int, ttl_ms: int, url: str) -> Window:
    import redis

    monitor = redis.Redis.from_url(url)
    cpu_a = redis_cpu(monitor)
    time.sleep(seconds / 2)  # the server's idle CPU (others use it too)
    idle_per_s = (redis_cpu(monitor) - cpu_a) / (seconds / 2)
    local = threading.local()

    def beat(tenant_id: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = redis.Redis.from_url(url)
        client.set(f"flowhq:alive:{tenant_id}", 1, px=ttl_ms)

    with Beats(ids, interval, threads, beat) as beats:
        time.sleep(0.5 + 2 * interval)
        cpu0, (calls0, usec0) = redis_cpu(monitor), redis_set_stats(monitor)
        began = time.monotonic()
        beats.recording.set()
        time.sleep(seconds)
        beats.recording.clear()
        window = beats.window
        window.seconds = time.monotonic() - began
        cpu1, (calls1, usec1) = redis_cpu(monitor), redis_set_stats(monitor)
        window.cpu_s = max(0.0, cpu1 - cpu0 - idle_per_s * window.seconds)
        window.extra["usec_per_set"] = (usec1 - usec0) / max(1, calls1 - calls0)
        window.extra["idle_cpu_per_s"] = idle_per_s

        # The Redis design's sweep: which workers should be alive (the database), then one MGET of their keys.
        def sweep_read() -> None:
            from workers.models import WorkerProcess
            from workers.states import LIVE_STATUSES

            live = list(WorkerProcess.objects.filter(status__in=LIVE_STATUSES).exclude(host="")
                        .values_list("tenant_id", flat=True))
            monitor.mget([f"flowhq:alive:{t}" for t in live])

        window.extra["sweep_ms"] = timed_ms(sweep_read, 100)
    if beats.errors:
        raise SystemExit(f"heartbeats failed: {beats.errors[:3]}")
    monitor.delete(*[f"flowhq:alive:{t}" for t in ids])
    return window


# --- report -------------------------------------------------------------------

def ratio(a: float, b: float) -> str:
    return f"×{a / b:.1f}" if b else "—"


def report(n: int, interval: float, db: dict[str, Window], rd: Window) -> None:
    scale = interval / DEFAULT_INTERVAL_S
    print(f"\n  N = {n} tenants, one beat each per {interval:g} s "
          f"(per-second figures also scaled to the default {DEFAULT_INTERVAL_S:g} s: ×{scale:.3f})")
    head = f"    {'':34}" + "".join(f"{s:>14}" for s in db) + f"{'redis SET':>14}"
    print(head)

    def line(label: str, values: list[str]) -> None:
        print(f"    {label:34}" + "".join(f"{v:>14}" for v in values))

    shapes = list(db.values())
    line("beats/s achieved", [f"{w.rate:.0f}" for w in [*shapes, rd]])
    line("latency p50 ms", [f"{percentile(w.latencies_ms, 50):.2f}" for w in [*shapes, rd]])
    line("latency p99 ms", [f"{percentile(w.latencies_ms, 99):.2f}" for w in [*shapes, rd]])
    line("schedule lag p99 ms", [f"{percentile(w.lag_ms, 99):.1f}" for w in [*shapes, rd]])
    line("server CPU s/s", [f"{w.cpu_s / w.seconds:.3f}" for w in [*shapes, rd]])
    line("  at 15 s", [f"{w.cpu_s / w.seconds * scale:.4f}" for w in [*shapes, rd]])
    line("server CPU µs/beat", [f"{w.cpu_s / max(1, w.calls) * 1e6:.0f}" for w in [*shapes, rd]])
    line("WAL bytes/beat (no FPI)",
         [f"{(w.extra['wal']['bytes'] - w.extra['wal']['fpi_bytes']) / max(1, w.calls):.0f}" for w in shapes] + ["0"])
    line("  of it index", [f"{w.extra['wal']['index_bytes'] / max(1, w.calls):.0f}" for w in shapes] + ["—"])
    line("full-page images bytes/beat", [f"{w.extra['wal']['fpi_bytes'] / max(1, w.calls):.0f}" for w in shapes]
         + ["—"])
    line("WAL kB/s", [f"{w.extra['wal']['bytes'] / w.seconds / 1024:.0f}" for w in shapes] + ["0"])
    line("  at 15 s", [f"{w.extra['wal']['bytes'] / w.seconds / 1024 * scale:.1f}" for w in shapes] + ["0"])
    line("HOT updates %", [f"{100 * w.extra['stats']['hot'] / max(1, w.extra['stats']['upd']):.0f}" for w in shapes]
         + ["—"])
    line("dead tuples at end", [str(w.extra["stats"]["dead_end"]) for w in shapes] + ["—"])
    line("autovacuum runs in window", [str(w.extra["stats"]["autovacuum"]) for w in shapes] + ["—"])
    line("heap growth kB", [f"{w.extra['stats']['heap_bytes'] / 1024:.0f}" for w in shapes] + ["—"])
    line("index growth kB", [f"{w.extra['stats']['index_bytes'] / 1024:.0f}" for w in shapes] + ["—"])
    line("sweep read p50 ms", [f"{percentile(w.extra['sweep_ms'], 50):.2f}" for w in [*shapes, rd]])
    line("sweep read p99 ms", [f"{percentile(w.extra['sweep_ms'], 99):.2f}" for w in [*shapes, rd]])
    print("    stale query plan: " + "; ".join(f"{s}: {w.extra['plan']}" for s, w in db.items()))
    print(f"    redis: SET {rd.extra['usec_per_set']:.1f} µs of server time each (commandstats); server CPU net of "
          f"its idle {rd.extra['idle_cpu_per_s']:.3f} s/s")
    before, after = db["index"], db["hot+ff"]
    wal = [w.extra["wal"]["bytes"] / max(1, w.calls) for w in (before, after)]
    cpu = [w.cpu_s / max(1, w.calls) for w in (before, after)]
    print(f"    before → after: WAL/beat {wal[0]:.0f} → {wal[1]:.0f} B ({ratio(wal[0], wal[1])} less); "
          f"backend CPU/beat {cpu[0] * 1e6:.0f} → {cpu[1] * 1e6:.0f} µs ({ratio(cpu[0], cpu[1])})")
    redis_cpu_beat = rd.cpu_s / max(1, rd.calls)
    # The Redis design still renews the database lease (fencing): at least twice per TTL, i.e.
    # every 1.5 intervals with the default TTL of 3 intervals — 2/3 of today's UPDATEs.
    kept = 2 / 3
    print(f"    Redis design (SET every beat + the lease UPDATE every 1.5 beats, the least that survives one lost "
          f"renewal): server CPU/beat {(redis_cpu_beat + kept * cpu[1]) * 1e6:.0f} µs vs {cpu[1] * 1e6:.0f} µs "
          f"for the UPDATE alone ({ratio(redis_cpu_beat + kept * cpu[1], cpu[1])}); database writes ×{kept:.2f}")


def sweep_only(rows: int, ttl_ms: int) -> None:
    """The idle stale query alone, at larger fleets, with and without the deadline index."""
    ensure_rows(rows, ttl_ms)
    sql(f"UPDATE {TABLE} SET stale_after = now() + interval '1 hour' WHERE status = 'RUNNING'")
    out = []
    for shape in ("index", "hot+ff"):
        set_shape(shape)
        times = timed_ms(stale_query, 50)
        out.append(f"{shape} ({plan()}): p50 {percentile(times, 50):.2f} / p99 {percentile(times, 99):.2f} ms")
    print(f"    idle stale query at {rows:,} rows: " + "; ".join(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,1000")
    parser.add_argument("--interval-ms", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sweep-rows", default="10000,100000")
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args()
    interval, ttl_ms = args.interval_ms / 1000, 3 * args.interval_ms
    env = use_throwaway_resources("heartbeat", redis_db=args.redis_db)
    sql("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    print(f"heartbeat: lease_renew (PostgreSQL) vs SET PX (Redis), {args.threads} connections, "
          f"{args.seconds:g} s windows; shared 2-core machine: CPU and latency move with other load, "
          "WAL bytes and tuple counts do not")
    for n in (int(x) for x in args.sizes.split(",") if x):
        ids = ensure_rows(n, ttl_ms)
        db = {shape: db_round(shape, ids, interval, args.seconds, args.threads, ttl_ms) for shape in SHAPES}
        rd = redis_round(ids, interval, args.seconds, args.threads, ttl_ms, env["REDIS_URL"])
        report(n, interval, db, rd)
    print("\n  sweep's liveness read at larger fleets (no heartbeats running)")
    for rows in (int(x) for x in args.sweep_rows.split(",") if x):
        sweep_only(rows, ttl_ms)


if __name__ == "__main__":
    main()
