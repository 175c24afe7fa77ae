"""Memory per linked tenant, the whole tenant (worker process and its Chromium), exec'ed workers
against forked ones, in one run.

For each mode one fleet agent runs the real bot: tenants are started and linked to the
simulator (each its own phone) until N = 1, 4, 8 are CONNECTED and idle; at each N it prints
the private memory of all tenants (summed USS of every worker's whole process tree), their
PSS, and the drop of the host's MemAvailable since before the first tenant started; then the
marginal private memory per tenant (the slope from N = 1 to the largest N).

    .venv/bin/python bench/bench_tenant_memory.py [--counts 1,4,8] [--settle 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_memory import mem_available_mb
from bench.common import simulator, start, stop, use_throwaway_resources, wait_for

MODES = {"exec'ed": "false", "forked": "true"}


def link(tenant_id: int, sim_url: str, phone: str) -> None:
    import requests

    from tenants.models import WhatsAppSession
    from tests.botkit import decode_qr

    def session() -> WhatsAppSession:
        return WhatsAppSession.objects.get(tenant_id=tenant_id)

    wait_for(lambda: session().state == "QR_READY", 90)
    requests.post(f"{sim_url}_sim/scan", json={"qr": decode_qr(session().qr), "phone": phone},
                  timeout=5).raise_for_status()
    wait_for(lambda: session().state == "CONNECTED", 90)


def measure_mode(mode: str, counts: list[int], sim_url: str, tmp: Path, settle: float) -> list[tuple[int, float, float, float]]:
    from tenants.models import Tenant
    from tenants.services import tenant_create
    from workers import lifecycle
    from workers.models import FleetHost, WorkerProcess
    from workers.process_memory import tree_memory

    host = f"mem{'f' if MODES[mode] == 'true' else 'e'}"
    agent = start([sys.executable, "manage.py", "fleet", "--host", host, "--capacity", str(max(counts))],
                  tmp / f"agent-{host}.log", FLOWHQ_HOST=host, FLEET_FORK_WORKERS=MODES[mode],
                  SESSIONS_PATH=str(tmp / f"sessions-{host}"))
    rows = []
    tenants: list[Tenant] = []
    try:
        wait_for(lambda: FleetHost.objects.filter(name=host, pid__isnull=False).exists(), 90)
        time.sleep(3)  # the zygote (if any) warm
        baseline = mem_available_mb()
        for n in counts:
            while len(tenants) < n:
                tenant = tenant_create(name=f"memory {host} {len(tenants)}")
                tenants.append(tenant)
                lifecycle.worker_start(tenant_id=tenant.pk)
                link(tenant.pk, sim_url, f"49151000{'1' if MODES[mode] == 'true' else '2'}{len(tenants):04d}")
            time.sleep(settle)
            uss = pss = 0.0
            for worker in WorkerProcess.objects.filter(tenant__in=tenants):
                assert worker.pid is not None
                memory = tree_memory(worker.pid)
                uss += memory.private_mb
                pss += memory.pss_mb
            rows.append((n, uss, pss, baseline - mem_available_mb()))
        for tenant in tenants:
            lifecycle.worker_stop(tenant_id=tenant.pk)
        wait_for(lambda: not WorkerProcess.objects.filter(tenant__in=tenants).exclude(status="STOPPED").exists(), 120)
    finally:
        stop(agent, timeout=120)
        Tenant.objects.filter(name__startswith=f"memory {host} ").delete()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,4,8")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before each measurement")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim, sim_url = simulator(tmp)
        try:
            use_throwaway_resources("tenant_memory", redis_db=12, BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim_url)
            for mode in MODES:
                results[mode] = measure_mode(mode, counts, sim_url, tmp, args.settle)
        finally:
            stop(sim)
    print(f"tenant memory: linked, idle tenants (worker + Chromium), one agent per mode, settle {args.settle:.0f}s")
    print("             N   private MB (USS)   PSS MB   MemAvailable drop MB")
    slopes = {}
    for mode, rows in results.items():
        for n, uss, pss, drop in rows:
            print(f"  {mode:<9} {n:>3} {uss:18.0f} {pss:8.0f} {drop:23.0f}")
        (n0, uss0, pss0, drop0), (n1, uss1, pss1, drop1) = rows[0], rows[-1]
        slopes[mode] = ((uss1 - uss0) / (n1 - n0), (pss1 - pss0) / (n1 - n0), (drop1 - drop0) / (n1 - n0))
        print(f"  {mode:<9} marginal per tenant: private {slopes[mode][0]:.0f} MB, PSS {slopes[mode][1]:.0f} MB, "
              f"MemAvailable {slopes[mode][2]:.0f} MB")
    forked, execed = slopes["forked"][0], slopes["exec'ed"][0]
    print(f"  forked / exec'ed marginal private memory: {forked / execed:.2f}")


if __name__ == "__main__":
    main()
