"""Soak: one tenant, 10,000 messages through the simulator, and its Chromium tree's memory.

Prints the PSS and USS of the bot's Chromium (the browser and every helper
process), and its anonymous PSS (the heaps: what other processes on the
machine sharing library pages cannot make look smaller), linked and idle, after 5,000 and 10,000 messages (each answered by
the bot), and after an idle period; how many reloads and restarts the memory
guard made; and whether every message was answered exactly once. Runs twice
in the same process: the guard off (BOT_BROWSER_RELOAD_MB=0), then on, its
limit the unguarded run's idle private memory (USS, what the guard measures)
plus --over-mb (or --limit-mb).

    .venv/bin/python bench/bench_soak.py [--messages 10000] [--over-mb 30] [--idle 30]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import simulator, start, stop, use_throwaway_resources, wait_for

BATCH = 500
SENDERS = 20  # 25 messages per chat per batch: well inside CHAT_QUEUE_SIZE


@dataclass
class Run:
    label: str
    limit_mb: int
    samples: list[tuple[str, float, float, float]] = field(default_factory=list)
    reloads: int = 0
    restarts: int = 0
    answered: int = 0
    duplicates: int = 0
    seconds: float = 0.0


def anon_pss_mb(pid: int) -> float:
    """Pss_Anon + Pss_Shmem of one process (smaps_rollup), MB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    kb = sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(("Pss_Anon:", "Pss_Shmem:")))
    return kb / 1024


def chromium_tree(worker_pid: int) -> tuple[float, float, float]:
    """PSS, USS and anonymous PSS (MB) of the Chromium the worker started, with all of its helpers."""
    import psutil

    from workers.process_memory import tree_memory

    browsers = [p for p in psutil.Process(worker_pid).children() if "chrom" in p.name()]
    used = [tree_memory(p.pid) for p in browsers]
    procs = [q for p in browsers for q in (p, *p.children(recursive=True))]
    return sum(u.pss_mb for u in used), sum(u.private_mb for u in used), sum(anon_pss_mb(q.pid) for q in procs)


def post(sim_url: str, phone: str, first: int, count: int) -> None:
    import requests

    with requests.Session() as http:
        for n in range(first, first + count):
            http.post(f"{sim_url}_sim/phones/{phone}/messages",
                      json={"id": f"S{n}", "from": f"4917{n % SENDERS:09d}", "body": f"hello {n}"}, timeout=10)


def answered(sim_url: str, phone: str) -> int:
    """How many messages the phone's linked device has sent (the simulator's count)."""
    import requests

    phones = requests.get(f"{sim_url}_sim/phones", timeout=10).json()
    return next((p["outbox"] for p in phones if p["phone"] == phone), 0)


def outbox(sim_url: str, phone: str) -> list[dict]:
    import requests

    response = requests.get(f"{sim_url}_sim/phones/{phone}/outbox", timeout=30)
    return response.json() if response.ok else []


def soak(run: Run, sim_url: str, phone: str, tmp: Path, messages: int, idle_s: float) -> Run:
    import requests

    from tenants import services
    from tenants.models import WhatsAppSession
    from tests.botkit import decode_qr
    from workers import lifecycle
    from workers.models import FleetHost, WorkerProcess

    host = f"soak{run.limit_mb}"
    log = tmp / f"agent-{host}.log"
    agent = start([sys.executable, "manage.py", "fleet", "--host", host], log, FLOWHQ_HOST=host,
                  BOT_BROWSER_RELOAD_MB=str(run.limit_mb), BOT_BROWSER_MEMORY_CHECK_MS="10000",
                  WORKER_MAX_MEMORY_MB="8192")
    try:
        wait_for(lambda: FleetHost.objects.filter(name=host, pid__isnull=False).exists(), 60)
        tenant = services.tenant_create(name=f"soak {run.label}", rate_limit_per_minute=1_000_000)
        services.template_create(tenant=tenant, match="default", body="Thanks, {name}!")
        session = lambda: WhatsAppSession.objects.get(tenant=tenant)  # noqa: E731
        lifecycle.worker_start(tenant_id=tenant.pk)
        wait_for(lambda: session().state == "QR_READY", 60)
        requests.post(f"{sim_url}_sim/scan", json={"qr": decode_qr(session().qr), "phone": phone}, timeout=5)
        wait_for(lambda: session().state == "CONNECTED", 60)
        pid = WorkerProcess.objects.get(tenant=tenant).pid
        time.sleep(5)
        run.samples.append(("0", *chromium_tree(pid)))
        began = time.monotonic()
        for first in range(0, messages, BATCH):
            post(sim_url, phone, first, min(BATCH, messages - first))
            done = min(first + BATCH, messages)
            wait_for(lambda done=done: answered(sim_url, phone) >= done, 600, interval=0.5)
            if done in (messages // 2, messages):
                time.sleep(3)
                run.samples.append((f"{done:,}", *chromium_tree(pid)))
        run.seconds = time.monotonic() - began
        time.sleep(idle_s)
        run.samples.append((f"idle {idle_s:.0f} s", *chromium_tree(pid)))
        sent = outbox(sim_url, phone)
        run.answered, run.duplicates = len({m["id"] for m in sent}), len(sent) - len({m["id"] for m in sent})
        lifecycle.worker_stop(tenant_id=tenant.pk)
        wait_for(lambda: WorkerProcess.objects.get(tenant=tenant).status == "STOPPED", 60)
    finally:
        stop(agent, timeout=60)
    over = re.findall(r'action=(\w+) .*msg="Chromium over its memory limit"', log.read_text(errors="replace"))
    run.reloads, run.restarts = over.count("reload"), over.count("restart")
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--limit-mb", type=int, default=0, help="BOT_BROWSER_RELOAD_MB of the guarded run")
    parser.add_argument("--over-mb", type=int, default=30, help="else: the unguarded run's idle USS plus this")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle before the last sample")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim, sim_url = simulator(tmp)
        try:
            use_throwaway_resources("soak", redis_db=10, BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim_url,
                                    SESSIONS_PATH=str(tmp / "sessions"), HEARTBEAT_INTERVAL_MS="5000")
            off = soak(Run("guard off", 0), sim_url, "4915100000091", tmp, args.messages, args.idle)
            limit = args.limit_mb or round(off.samples[0][2] + args.over_mb)
            runs = [off, soak(Run("guard on", limit), sim_url, "4915100000092", tmp, args.messages, args.idle)]
        finally:
            stop(sim)
    print(f"soak: one tenant, {args.messages:,} messages (batches of {BATCH}, {SENDERS} chats), real Chromium")
    print("  Chromium tree (browser + helpers), MB     PSS     USS  anon PSS")
    for run in runs:
        limit = f"BOT_BROWSER_RELOAD_MB={run.limit_mb}" if run.limit_mb else "BOT_BROWSER_RELOAD_MB=0"
        print(f"  {run.label} ({limit}, checked every 10 s)")
        for label, pss, uss, anon in run.samples:
            print(f"    after {label:<14}                  {pss:6.0f}  {uss:6.0f}  {anon:8.0f}")
        print(f"    reloads {run.reloads}, restarts {run.restarts}; answered {run.answered:,}/{args.messages:,}, "
              f"duplicates {run.duplicates}; {args.messages / run.seconds:.1f} messages/s")
    off, on = runs
    for what, column in (("USS", 2), ("PSS", 1), ("anon PSS", 3)):
        print(f"  guard on / off, {what}: at {args.messages:,} messages {on.samples[2][column] / off.samples[2][column]:.2f}, "
              f"after idle {on.samples[3][column] / off.samples[3][column]:.2f}; growth from 0 to "
              f"{args.messages:,}: off {off.samples[2][column] - off.samples[0][column]:+.0f} MB, "
              f"on {on.samples[2][column] - on.samples[0][column]:+.0f} MB")


if __name__ == "__main__":
    main()
