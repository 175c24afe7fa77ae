"""Bot figures against the simulator: start call → QR_READY, scan → CONNECTED, and the
memory (private memory, the tree's USS, with PSS beside it) of one tenant (worker + Chromium tree) idle and after 1,000 messages,
next to a bare Chromium on the same page (the floor), measured in the same run.

    .venv/bin/python bench/bench_bot.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import linked_chromium, start, stop, use_throwaway_resources, wait_for

PHONE, BARE_PHONE = "4915100000001", "4915100000002"


def tree_mb(pid: int) -> tuple[float, float]:
    """Private memory (summed USS) and PSS of a process tree, MB."""
    from workers.process_memory import tree_memory

    used = tree_memory(pid)
    return used.private_mb, used.pss_mb


def post_messages(sim_url: str, phone: str, count: int, prefix: str) -> None:
    import requests

    with requests.Session() as http:
        for n in range(count):
            http.post(f"{sim_url}_sim/phones/{phone}/messages",
                      json={"id": f"{prefix}{n}", "from": f"49170000{n % 10:05d}", "body": f"hello {n}"}, timeout=10)


def outbox(sim_url: str, phone: str) -> list[dict]:
    import requests

    response = requests.get(f"{sim_url}_sim/phones/{phone}/outbox", timeout=10)
    return response.json() if response.ok else []


async def bare_chromium(sim_url: str, profile: Path, messages: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The floor: the same Chromium, flags and page, linked, before and after the same messages."""
    from workers.bot.browser import launch_options

    browser = await linked_chromium(sim_url, profile, BARE_PHONE, launch_options())
    try:
        page = (await browser.pages())[0]
        await page.evaluate("() => window.require('WAWebCollections').Msg.on('add', () => {})")
        await asyncio.sleep(5)
        idle = tree_mb(browser.process.pid)
        await asyncio.to_thread(post_messages, sim_url, BARE_PHONE, messages, "bare")
        await page.waitForFunction(f"() => window.require('WAWebCollections').Msg.getModelsArray().length >= "
                                   f"{messages}", {"polling": 200, "timeout": 120000})
        await asyncio.sleep(3)
        return idle, tree_mb(browser.process.pid)
    finally:
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim = start([sys.executable, "-m", "simulator", "--port", "8188", "--qr-rotate-ms", "20000"],
                    tmp / "sim.log")
        sim_url = "http://127.0.0.1:8188/"
        use_throwaway_resources("bot", BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim_url,
                                SESSIONS_PATH=str(tmp / "sessions"), HEARTBEAT_INTERVAL_MS="5000")
        from tenants import services
        from tenants.models import WhatsAppSession
        from tests.botkit import decode_qr
        from workers import lifecycle
        from workers.models import FleetHost, WorkerProcess

        agent = start([sys.executable, "manage.py", "fleet", "--host", "benchbot"], tmp / "agent.log",
                      FLOWHQ_HOST="benchbot")
        try:
            wait_for(lambda: FleetHost.objects.filter(name="benchbot", pid__isnull=False).exists(), 60)
            tenant = services.tenant_create(name="bench bot", rate_limit_per_minute=100_000)
            services.template_create(tenant=tenant, match="default", body="Thanks, {name}!")

            def session() -> WhatsAppSession:
                return WhatsAppSession.objects.get(tenant=tenant)

            began = time.monotonic()
            lifecycle.worker_start(tenant_id=tenant.pk)
            wait_for(lambda: session().state == "QR_READY", 60)
            to_qr = time.monotonic() - began
            scanned = time.monotonic()
            import requests

            requests.post(f"{sim_url}_sim/scan", json={"qr": decode_qr(session().qr), "phone": PHONE}, timeout=5)
            wait_for(lambda: session().state == "CONNECTED", 60)
            to_connected = time.monotonic() - scanned
            time.sleep(5)
            pid = WorkerProcess.objects.get(tenant=tenant).pid
            idle = tree_mb(pid)
            post_messages(sim_url, PHONE, args.messages, "m")
            wait_for(lambda: len(outbox(sim_url, PHONE)) >= args.messages, 600, interval=0.5)
            time.sleep(3)
            busy = tree_mb(pid)
            # Measured alone: PSS splits shared pages between processes that map them.
            lifecycle.worker_stop(tenant_id=tenant.pk)
            wait_for(lambda: WorkerProcess.objects.get(tenant=tenant).status == "STOPPED", 60)
            bare_idle, bare_busy = asyncio.run(bare_chromium(sim_url, tmp / "bare", args.messages))
        finally:
            stop(agent, timeout=60)
            stop(sim)
    print("bot: one tenant against the simulator (real Chromium, pyppeteer)")
    print(f"  start call → QR_READY          {to_qr:6.2f} s")
    print(f"  scan → CONNECTED               {to_connected:6.2f} s")
    for column, what in ((0, "private (USS)"), (1, "PSS")):
        print(f"  {what}, MB{'':<18} idle    after {args.messages} messages")
        print(f"  tenant (worker + Chromium)     {idle[column]:6.0f}  {busy[column]:6.0f}")
        print(f"  bare Chromium, same page       {bare_idle[column]:6.0f}  {bare_busy[column]:6.0f}")
        print(f"  overhead of the worker         {idle[column] - bare_idle[column]:6.0f}  "
              f"{busy[column] - bare_busy[column]:6.0f}  (ratio {idle[column] / bare_idle[column]:.2f}x idle, "
              f"{busy[column] / bare_busy[column]:.2f}x busy)")


if __name__ == "__main__":
    main()
