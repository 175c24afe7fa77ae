"""Forked against exec'ed tenant workers (placeholder runtime, no browser), in one run: N
tenants started at once → all RUNNING, each worker's private memory (USS) and PSS, CPU
seconds per worker, and the zygote's own cost (paid once per host).

    .venv/bin/python bench/bench_fork.py [--tenants 50] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start, stop, use_throwaway_resources, wait_for

MODES = {"exec'ed": "false", "forked": "true"}


def start_all(mode: str, n: int, tmp: Path, round_no: int) -> dict[str, float]:
    import psutil

    from tenants.models import Tenant
    from tenants.services import tenant_create
    from workers import lifecycle
    from workers.models import FleetHost, WorkerProcess
    from workers.process_memory import tree_memory
    from workers.states import WorkerStatus

    host = f"fork{round_no}{'f' if MODES[mode] == 'true' else 'e'}"
    agent = start([sys.executable, "manage.py", "fleet", "--host", host, "--capacity", str(n)],
                  tmp / f"agent-{host}.log", FLOWHQ_HOST=host, FLEET_FORK_WORKERS=MODES[mode])
    try:
        wait_for(lambda: FleetHost.objects.filter(name=host, pid__isnull=False).exists(), 90)
        tenants = [tenant_create(name=f"fork {host} {i}") for i in range(n)]
        began = time.monotonic()
        for tenant in tenants:
            lifecycle.worker_start(tenant_id=tenant.pk)
        wait_for(lambda: WorkerProcess.objects.filter(tenant__in=tenants, status=WorkerStatus.RUNNING).count() == n,
                 60 + 3 * n)
        all_running = time.monotonic() - began
        time.sleep(3)  # let the workers settle
        uss, pss, cpu = [], [], []
        for worker in WorkerProcess.objects.filter(tenant__in=tenants):
            assert worker.pid is not None
            memory = tree_memory(worker.pid)
            uss.append(memory.private_mb)
            pss.append(memory.pss_mb)
            times = psutil.Process(worker.pid).cpu_times()
            cpu.append(times.user + times.system)
        zygote_mb = 0.0
        for child in psutil.Process(agent.pid).children():
            if "zygote" in " ".join(child.cmdline()):
                zygote_mb = tree_memory(child.pid).private_mb
        for tenant in tenants:
            lifecycle.worker_stop(tenant_id=tenant.pk)
        wait_for(lambda: not WorkerProcess.objects.filter(tenant__in=tenants).exclude(
            status=WorkerStatus.STOPPED).exists(), 120)
        return {"all_running": all_running, "uss": percentile(uss, 50), "pss": percentile(pss, 50),
                "cpu": percentile(cpu, 50), "zygote": zygote_mb}
    finally:
        stop(agent, timeout=120)
        Tenant.objects.filter(name__startswith=f"fork {host} ").delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    use_throwaway_resources("fork", redis_db=12, BOT_RUNTIME="placeholder", HEARTBEAT_INTERVAL_MS="1000",
                            STALE_THRESHOLD_MS="5000")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp_dir:
        for round_no in range(args.rounds):
            # Alternating order, so neither mode always runs on a warmer machine.
            for mode in (list(MODES) if round_no % 2 == 0 else list(reversed(MODES))):
                results[mode].append(start_all(mode, args.tenants, Path(tmp_dir), round_no))
    print(f"fork: {args.tenants} placeholder tenants started at once on one agent, {args.rounds} round(s); "
          "median per worker (its whole tree)")
    print("             all RUNNING s   USS MB   PSS MB   CPU s   zygote USS MB")
    rows = {}
    for mode, runs in results.items():
        row = {key: percentile([r[key] for r in runs], 50) for key in ("all_running", "uss", "pss", "cpu", "zygote")}
        rows[mode] = row
        print(f"  {mode:<9} {row['all_running']:14.1f} {row['uss']:8.1f} {row['pss']:8.1f} {row['cpu']:7.2f}"
              f" {row['zygote']:15.1f}")
    new, old = rows["forked"], rows["exec'ed"]
    print(f"  forked / exec'ed: all RUNNING {new['all_running'] / old['all_running']:.2f}, "
          f"USS {new['uss'] / old['uss']:.2f}, PSS {new['pss'] / old['pss']:.2f}, CPU {new['cpu'] / old['cpu']:.2f}")


if __name__ == "__main__":
    main()
