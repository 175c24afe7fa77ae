"""Recovery figures: kill -9 of a linked tenant's worker → CONNECTED again, and start call →
QR_READY, p50 of --runs each — the real bot, Chromium and simulator, one agent.

Three settings in one run, side by side: "back-off" is the agent as it was before issue 12 (every
first crash waited WORKER_RESTART_BASE_DELAY_MS: here WORKER_STABLE_AFTER_MS is out of reach, so
no run counts as stable, and the crash count is set back to 0 before each kill, so each waits
1 × base; workers exec'ed); "at once" respawns the first crash after a stable run at once
(WORKER_STABLE_AFTER_MS=--stable-after-ms, waited out before each kill; workers still exec'ed);
"forked" is the agent today: at once, and each worker forked by the host's zygote.

    .venv/bin/python bench/bench_recovery.py [--runs 5] [--stable-after-ms 3000]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, simulator, start, stop, use_throwaway_resources, wait_for

PHONES = {"back-off": "4915100000031", "at once": "4915100000032", "forked": "4915100000033"}


def session_state(tenant_id: int) -> str:
    from tenants.models import WhatsAppSession

    return WhatsAppSession.objects.get(tenant_id=tenant_id).state


def worker_pid(tenant_id: int) -> int | None:
    from workers.models import WorkerProcess

    return WorkerProcess.objects.get(tenant_id=tenant_id).pid


def start_to_qr(label: str, runs: int) -> list[float]:
    from tenants import services
    from workers import lifecycle
    from workers.models import WorkerProcess

    times = []
    for n in range(runs):
        tenant = services.tenant_create(name=f"recovery qr {label} {n}")
        began = time.monotonic()
        lifecycle.worker_start(tenant_id=tenant.pk)
        wait_for(lambda t=tenant.pk: session_state(t) == "QR_READY", 60)
        times.append(time.monotonic() - began)
        lifecycle.worker_stop(tenant_id=tenant.pk)
        wait_for(lambda t=tenant: WorkerProcess.objects.get(tenant=t).status == "STOPPED", 60)
    return times


def kill_to_connected(label: str, sim_url: str, runs: int, stable_s: float) -> list[float]:
    import requests

    from tenants import services
    from tenants.models import WhatsAppSession
    from tests.botkit import decode_qr
    from workers import lifecycle
    from workers.models import WorkerProcess

    tenant = services.tenant_create(name=f"recovery {label}")
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_for(lambda: session_state(tenant.pk) == "QR_READY", 60)
    qr = decode_qr(WhatsAppSession.objects.get(tenant=tenant).qr)
    requests.post(f"{sim_url}_sim/scan", json={"qr": qr, "phone": PHONES[label]}, timeout=5).raise_for_status()
    wait_for(lambda: session_state(tenant.pk) == "CONNECTED", 60)
    times = []
    for _ in range(runs):
        time.sleep(stable_s)  # the worker has been up at least this long
        # Each kill is a first crash (as after a long stable run): under "back-off", where no run
        # counts as stable, the agent then waits exactly what it waited before issue 12 (1 × base).
        WorkerProcess.objects.filter(tenant=tenant).update(consecutive_failures=0)
        pid = worker_pid(tenant.pk)
        assert pid is not None
        began = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda p=pid: worker_pid(tenant.pk) not in (None, p) and session_state(tenant.pk) == "CONNECTED",
                 60, interval=0.02)
        times.append(time.monotonic() - began)
    lifecycle.worker_stop(tenant_id=tenant.pk)
    wait_for(lambda: WorkerProcess.objects.get(tenant=tenant).status == "STOPPED", 60)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stable-after-ms", type=int, default=3000)
    args = parser.parse_args()
    stable_s = args.stable_after_ms / 1000 + 0.5
    results = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim, sim_url = simulator(tmp)
        try:
            use_throwaway_resources("recovery", redis_db=11, BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim_url,
                                    SESSIONS_PATH=str(tmp / "sessions"), HEARTBEAT_INTERVAL_MS="5000",
                                    WORKER_RESTART_BASE_DELAY_MS="1000")
            from workers.models import FleetHost

            settings_by_label = {
                "back-off": {"WORKER_STABLE_AFTER_MS": str(10**9), "FLEET_FORK_WORKERS": "false"},
                "at once": {"WORKER_STABLE_AFTER_MS": str(args.stable_after_ms), "FLEET_FORK_WORKERS": "false"},
                "forked": {"WORKER_STABLE_AFTER_MS": str(args.stable_after_ms), "FLEET_FORK_WORKERS": "true"},
            }
            for label, agent_env in settings_by_label.items():
                host = f"recovery{len(results)}"
                agent = start([sys.executable, "manage.py", "fleet", "--host", host], tmp / f"agent-{host}.log",
                              FLOWHQ_HOST=host, **agent_env)
                try:
                    wait_for(lambda h=host: FleetHost.objects.filter(name=h, pid__isnull=False).exists(), 60)
                    kills = kill_to_connected(label, sim_url, args.runs, stable_s)
                    qrs = start_to_qr(label, args.runs)
                    results[label] = (kills, qrs)
                finally:
                    stop(agent, timeout=60)
        finally:
            stop(sim)
    print(f"recovery: one linked tenant, real Chromium on the simulator, {args.runs} runs each "
          f"(WORKER_RESTART_BASE_DELAY_MS=1000; 'at once': WORKER_STABLE_AFTER_MS={args.stable_after_ms}, "
          f"waited out before each kill)")
    print("                        kill -9 → CONNECTED p50 (all, s)        start call → QR_READY p50 (all, s)")
    for label, (kills, qrs) in results.items():
        print(f"  {label:<10}  {percentile(kills, 50):6.2f}  ({', '.join(f'{t:.2f}' for t in kills)})"
              f"      {percentile(qrs, 50):6.2f}  ({', '.join(f'{t:.2f}' for t in qrs)})")
    old_kills, old_qrs = results["back-off"]
    for label in ("at once", "forked"):
        kills, qrs = results[label]
        print(f"  {label} / back-off: kill -9 → CONNECTED {percentile(kills, 50) / percentile(old_kills, 50):.2f}, "
              f"start → QR_READY {percentile(qrs, 50) / percentile(old_qrs, 50):.2f}")

if __name__ == "__main__":
    main()
