"""Pipeline figures: throughput (messages/s through dedup, chat queue, matching and the
log, rate limit off) and latency from the simulator's delivery to the reply in its
outbox, p50/p99, for 1 and 10 chats — the real bot, Chromium and simulator.

    .venv/bin/python bench/bench_pipeline.py [--messages 300] [--slow-receivers 3]

With --slow-receivers N it measures again with N webhook endpoints for every event, each
answering after WEBHOOK_SLOW_S, delivered by a `webhooks` worker: the reply latency must not move.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start, stop, use_throwaway_resources, wait_for

PHONE = "4915100000001"
SLOW_S = 2.0


def slow_receiver(delay_s: float):  # noqa: ANN201
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            time.sleep(delay_s)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server



def run_round(http, sim_url: str, chats: int, count: int, prefix: str, paced: bool) -> tuple[float, list[float]]:  # noqa: ANN001
    """Post `count` messages over `chats` chats; returns (seconds until all replied, latencies ms)."""
    http.delete(f"{sim_url}_sim/phones/{PHONE}/outbox", timeout=10)
    posted: dict[str, float] = {}
    began = time.time()
    for n in range(count):
        message_id = f"{prefix}{n}"
        posted[message_id] = time.time()
        http.post(f"{sim_url}_sim/phones/{PHONE}/messages",
                  json={"id": message_id, "from": f"49170000{n % chats:05d}", "body": "hello"}, timeout=10)
        if paced:
            time.sleep(0.05)
    replies = wait_for(lambda: (box := http.get(f"{sim_url}_sim/phones/{PHONE}/outbox", timeout=10).json())
                       and len(box) >= count and box, 600, interval=0.2)
    from tenants.messages import reply_message_id
    from tenants.models import Tenant

    tenant_id = Tenant.objects.get(slug="bench-pipeline").pk
    sent_at = {m["id"]: datetime.fromisoformat(m["sent_at"].replace("Z", "+00:00")).timestamp() for m in replies}
    latencies = [(sent_at[reply_message_id(tenant_id, mid)] - t) * 1000 for mid, t in posted.items()]
    return max(sent_at.values()) - began, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--slow-receivers", type=int, default=0,
                        help="measure again with this many slow webhook receivers for every event")
    args = parser.parse_args()
    import requests

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sim = start([sys.executable, "-m", "simulator", "--port", "8187"], tmp / "sim.log")
        sim_url = "http://127.0.0.1:8187/"
        # A burst into one chat must fit its queue (CHAT_QUEUE_SIZE): overflow is dropped by design.
        use_throwaway_resources("pipeline", BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim_url,
                                SESSIONS_PATH=str(tmp / "sessions"), HEARTBEAT_INTERVAL_MS="5000",
                                CHAT_QUEUE_SIZE=str(max(50, args.messages)), WEBHOOK_ALLOW_PRIVATE="1")
        from tenants import services
        from tenants.models import WhatsAppSession
        from tests.botkit import decode_qr
        from workers import lifecycle
        from workers.models import FleetHost

        agent = start([sys.executable, "manage.py", "fleet", "--host", "benchpipe"], tmp / "agent.log",
                      FLOWHQ_HOST="benchpipe")
        figures = []
        hooks_worker = None
        try:
            wait_for(lambda: FleetHost.objects.filter(name="benchpipe", pid__isnull=False).exists(), 60)
            tenant = services.tenant_create(name="bench pipeline", slug="bench-pipeline",
                                            rate_limit_per_minute=1_000_000)
            services.template_create(tenant=tenant, match="keyword", pattern="menu", body="Our menu")
            services.template_create(tenant=tenant, match="regex", pattern=r"order\s+#?\d+", body="On its way")
            services.template_create(tenant=tenant, match="default", body="Thanks, {name}!")
            lifecycle.worker_start(tenant_id=tenant.pk)
            wait_for(lambda: WhatsAppSession.objects.get(tenant=tenant).state == "QR_READY", 60)
            requests.post(f"{sim_url}_sim/scan", timeout=5, json={
                "qr": decode_qr(WhatsAppSession.objects.get(tenant=tenant).qr), "phone": PHONE})
            wait_for(lambda: WhatsAppSession.objects.get(tenant=tenant).state == "CONNECTED", 60)
            time.sleep(2)
            with requests.Session() as http:
                for chats in (1, 10):
                    # Latency: messages paced (one every 50 ms), so each is measured on its own.
                    _, latencies = run_round(http, sim_url, chats, min(args.messages, 200), f"lat{chats}-", True)
                    # Throughput: a burst, as fast as the simulator takes them.
                    elapsed, _ = run_round(http, sim_url, chats, args.messages, f"tp{chats}-", False)
                    figures.append(("", chats, latencies, args.messages / elapsed))
                if args.slow_receivers:
                    from webhooks import services as webhook_services

                    servers = [slow_receiver(SLOW_S) for _ in range(args.slow_receivers)]
                    for server in servers:
                        webhook_services.endpoint_create(
                            tenant=tenant, url=f"http://127.0.0.1:{server.server_address[1]}/", events=["*"])
                    hooks_worker = start([sys.executable, "-m", "celery", "-A", "flowhq", "worker", "-Q",
                                          "webhooks", "-n", "webhooks-bench@%h", "--pool", "threads",
                                          "--concurrency", "8", "--without-mingle", "--without-gossip"],
                                         tmp / "webhooks.log")
                    time.sleep(3)
                    label = f"with {args.slow_receivers} slow receivers ({SLOW_S:g} s each)"
                    for chats in (1, 10):
                        _, latencies = run_round(http, sim_url, chats, min(args.messages, 200), f"wlat{chats}-",
                                                 True)
                        elapsed, _ = run_round(http, sim_url, chats, args.messages, f"wtp{chats}-", False)
                        figures.append((label, chats, latencies, args.messages / elapsed))
        finally:
            if hooks_worker is not None:
                stop(hooks_worker)
            stop(agent, timeout=60)
            stop(sim)
    print("pipeline: delivery by the simulator → reply in its outbox (real bot, Chromium, rate limit off)")
    for label, chats, latencies, rate in figures:
        print(f"  {chats:>2} chat(s){' ' + label if label else ''}: latency ms p50 {percentile(latencies, 50):6.1f}  p99 "
              f"{percentile(latencies, 99):6.1f}  |  burst throughput {rate:6.1f} messages/s")


if __name__ == "__main__":
    main()
