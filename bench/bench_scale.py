"""The control plane at scale on one machine: --tenants placeholder tenant workers (forked) on
--agents fleet agents, with beat and Flower, PostgreSQL behind PgBouncer in transaction mode.

Prints: start-all time (every start call → all RUNNING), memory (private per worker, the
host's MemAvailable drop), Redis clients and memory, PostgreSQL server connections and
PgBouncer client connections, one stale sweep's duration, `inspect ping` to every node,
Flower's CPU and memory; then kills one agent with SIGKILL and measures the time until its
tenants run on the other agents. Needs PgBouncer (`apt-get install pgbouncer`).

    .venv/bin/python bench/bench_scale.py [--tenants 500] [--agents 2] [--flower-window 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_memory import mem_available_mb
from bench.common import free_port, percentile, start, stop, use_throwaway_resources, wait_for

TIMINGS = {"HEARTBEAT_INTERVAL_MS": "5000", "STALE_THRESHOLD_MS": "15000"}
FLOWER_AUTH = "bench:bench-scale-password"


def pgbouncer(tmp: Path, database: str) -> tuple[subprocess.Popen[bytes], int]:
    """A PgBouncer of the bench's own in transaction mode, as the postgres user (it refuses root)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        raise SystemExit("bench_scale needs PgBouncer: apt-get install pgbouncer")
    port = free_port()
    folder = tmp / "pgbouncer"
    folder.mkdir()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(f"""[databases]
{database} = host=127.0.0.1 port=5432 dbname={database}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
max_client_conn = 5000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits
""")
    for path in (tmp, folder, *folder.iterdir()):
        path.chmod(0o755)
    argv = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    proc = start(argv, tmp / "pgbouncer.log")
    wait_for(lambda: _listening(port), 20)
    return proc, port


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tcp_clients(port: int) -> int:
    import psutil

    return sum(1 for c in psutil.net_connections("tcp")
               if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def busy_core_seconds() -> float:
    """CPU time the whole machine spent busy so far (every process, every core)."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--flower-window", type=float, default=30.0)
    parser.add_argument("--logs", help="keep the processes' logs in this folder")
    args = parser.parse_args()
    n = args.tenants

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(args.logs or tmp_dir)
        tmp.mkdir(parents=True, exist_ok=True)
        env = use_throwaway_resources("scale", redis_db=12, BOT_RUNTIME="placeholder", LOG_LEVEL="INFO", **TIMINGS)
        database = env["DATABASE_URL"].rsplit("/", 1)[1]
        bouncer, bouncer_port = pgbouncer(tmp, database)
        pooled = f"postgres://postgres@127.0.0.1:{bouncer_port}/{database}"
        children = {"DATABASE_URL": pooled, "DATABASE_TRANSACTION_POOLING": "1"}
        procs: list[subprocess.Popen[bytes]] = [bouncer]
        hosts = [f"scale{i}" for i in range(args.agents)]
        import psutil
        import redis
        from django.db import connection

        from flowhq.celery import app
        from tenants.services import tenant_create
        from workers import lifecycle
        from workers.models import FleetHost, WorkerProcess
        from workers.process_memory import tree_memory
        from workers.sweep import sweep

        try:
            broker = redis.Redis.from_url(env["REDIS_URL"])
            redis_db = str(broker.connection_pool.connection_kwargs.get("db", 0))

            def redis_clients() -> int:  # of this bench's database: others may share the server
                return sum(1 for c in broker.client_list() if c.get("db") == redis_db)

            redis_before = redis_clients()
            memory_before = mem_available_mb()
            agents = {}
            for host in hosts:
                agents[host] = start([sys.executable, "manage.py", "fleet", "--host", host, "--capacity", str(n)],
                                     tmp / f"agent-{host}.log", FLOWHQ_HOST=host, **children)
                procs.append(agents[host])
            procs.append(start([sys.executable, "-m", "celery", "-A", "flowhq", "beat", "-S", "django",
                                "--schedule", str(tmp / "beat-schedule")], tmp / "beat.log", **children))
            flower = start([sys.executable, "-m", "celery", "-A", "flowhq", "flower", "--address=127.0.0.1",
                            f"--port={free_port()}", f"--basic-auth={FLOWER_AUTH}"], tmp / "flower.log", **children)
            procs.append(flower)
            wait_for(lambda: FleetHost.objects.filter(name__in=hosts, pid__isnull=False).count() == len(hosts), 120)
            time.sleep(5)  # zygotes warm, Flower connected

            tenants = [tenant_create(name=f"scale {i}") for i in range(n)]
            began, busy0 = time.monotonic(), busy_core_seconds()
            for tenant in tenants:
                lifecycle.worker_start(tenant_id=tenant.pk)
            calls_done = time.monotonic() - began
            wait_for(lambda: WorkerProcess.objects.filter(status="RUNNING").count() == n, 900, interval=0.5)
            all_running = time.monotonic() - began
            start_busy = busy_core_seconds() - busy0
            by_host = {h: WorkerProcess.objects.filter(host=h).count() for h in hosts}
            time.sleep(20)  # steady state: every worker has heartbeaten a few times

            workers = list(WorkerProcess.objects.values_list("pid", flat=True))
            forked = sum(1 for pid in workers if pid and psutil.Process(pid).environ().get("FLOWHQ_ROLE") == "zygote")
            private = [tree_memory(pid).private_mb for pid in workers if pid]
            memory_drop = memory_before - mem_available_mb()
            clients = redis_clients()
            redis_per_worker = (clients - redis_before) / n
            redis_memory = broker.info("memory")["used_memory"] / 2**20
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database])
                (pg_server,) = cursor.fetchone()
            bouncer_clients = tcp_clients(bouncer_port)
            sweeps = []
            for _ in range(5):
                t0 = time.monotonic()
                sweep()
                sweeps.append(time.monotonic() - t0)
            t0 = time.monotonic()
            replies = app.control.ping(timeout=60, limit=n + len(hosts)) or []
            ping_s = time.monotonic() - t0
            flower_cpu0, t0 = cpu_seconds(flower.pid), time.monotonic()
            time.sleep(args.flower_window)
            flower_cpu = (cpu_seconds(flower.pid) - flower_cpu0) / (time.monotonic() - t0)
            flower_mb = tree_memory(flower.pid).private_mb
            load = os.getloadavg()[0]

            victim = hosts[0]
            moving = set(WorkerProcess.objects.filter(host=victim).values_list("tenant_id", flat=True))
            killed_at, busy0 = time.monotonic(), busy_core_seconds()
            agents[victim].send_signal(signal.SIGKILL)
            agents[victim].wait()
            wait_for(lambda: WorkerProcess.objects.filter(tenant_id__in=moving, status="RUNNING").exclude(
                host=victim).count() == len(moving), 900, interval=0.5)
            replaced = time.monotonic() - killed_at
            replace_busy = busy_core_seconds() - busy0
            cores = psutil.cpu_count()

            print(f"scale: {n} placeholder tenant workers (forked) on {len(hosts)} agents {by_host}, beat, "
                  f"Flower, PostgreSQL through PgBouncer (transaction mode); {TIMINGS}")
            print(f"  start calls: {calls_done:.1f}s for {n}; all RUNNING after {all_running:.1f}s "
                  f"({forked} of {n} forked); the machine busy {start_busy:.0f} of "
                  f"{all_running * cores:.0f} core-seconds")
            print(f"  private memory per worker MB: p50 {percentile(private, 50):.1f}, p95 {percentile(private, 95):.1f}"
                  f"; MemAvailable drop {memory_drop / 1024:.2f} GB ({memory_drop / n:.1f} MB per tenant, "
                  "agents, zygotes, beat and Flower included)")
            print(f"  Redis: {clients} clients ({redis_per_worker:.2f} per worker), "
                  f"{redis_memory:.0f} MB used")
            print(f"  PostgreSQL: {pg_server} server connections for {n} workers; PgBouncer: {bouncer_clients} "
                  "client connections")
            print(f"  one stale sweep: p50 {percentile(sweeps, 50) * 1000:.0f} ms (5 runs)")
            print(f"  inspect ping: {len(replies)} of {n + len(hosts)} nodes answered in {ping_s:.2f}s")
            print(f"  Flower: {flower_cpu * 100:.0f}% of a core over {args.flower_window:.0f}s, "
                  f"{flower_mb:.0f} MB private (load average {load:.1f})")
            print(f"  agent {victim} killed (SIGKILL): its {len(moving)} tenants RUNNING elsewhere after "
                  f"{replaced:.1f}s (STALE_THRESHOLD_MS={TIMINGS['STALE_THRESHOLD_MS']}); the machine busy "
                  f"{replace_busy:.0f} of {replaced * cores:.0f} core-seconds")
        finally:
            # Processes first (an interrupted run must not leave 500 workers behind), the database last.
            for proc in reversed(procs):
                stop(proc, timeout=180)
            for leftover in psutil.process_iter(["pid"]):
                try:
                    if leftover.environ().get("FLOWHQ_HOST") in hosts:
                        leftover.kill()
                except psutil.Error:
                    continue
            connection.close()

if __name__ == "__main__":
    main()
