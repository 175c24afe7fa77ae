"""Pipeline figures: throughput (messages/s through dedup, chat queue, matching and the
log, rate limit off) and latency from the simulator's delivery to the reply in its
outbox, p50/p99, for 1 and 10 chats — the real bot, Chromium and simulator.

    .venv/bin/python bench/bench_pipeline.py [--messages 300] [--rounds 3] [--slow-receivers 3]

With --slow-receivers N, a `webhooks` worker runs throughout and N webhook endpoints that want
every event, each answering after SLOW_S, are switched on and off between rounds (in alternating
order, so that what else the machine does weighs on both alike): the reply latency with them must
be the latency without them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start, stop, use_throwaway_resources, wait_for
from tests.webhooks.receiver import Receiver

PHONE = "4915100000001"
SLOW_S = 2.0


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
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (each: paced, then a burst)")
    parser.add_argument("--slow-receivers", type=int, default=0,
                        help="alternate rounds with this many slow webhook receivers for every event")
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
        from webhooks import services as webhook_services
        from workers import lifecycle
        from workers.models import FleetHost

        agent = start([sys.executable, "manage.py", "fleet", "--host", "benchpipe"], tmp / "agent.log",
                      FLOWHQ_HOST="benchpipe")
        figures: list[tuple[str, int, list[float], float]] = []
        hooks_worker = None
        receivers: list[Receiver] = []
        hooked = 0
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
            modes = [""]
            endpoints = []
            if args.slow_receivers:
                receivers = [Receiver(delay_s=SLOW_S).start() for _ in range(args.slow_receivers)]
                endpoints = [webhook_services.endpoint_create(tenant=tenant, url=r.url, events=["*"], enabled=False)[0]
                             for r in receivers]
                hooks_worker = start([sys.executable, "-m", "celery", "-A", "flowhq", "worker", "-Q",
                                      "webhooks", "-n", "webhooks-bench@%h", "--pool", "threads",
                                      "--concurrency", "8", "--without-mingle", "--without-gossip"],
                                     tmp / "webhooks.log")
                time.sleep(3)
                modes.append(f"with {args.slow_receivers} slow receivers ({SLOW_S:g} s each)")
            with requests.Session() as http:
                for chats in (1, 10):
                    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
                    rates: dict[str, list[float]] = {mode: [] for mode in modes}
                    for n in range(args.rounds):
                        for mode in modes if n % 2 == 0 else modes[::-1]:
                            for endpoint in endpoints:  # off also fails what is still pending
                                webhook_services.endpoint_update(endpoint=endpoint, enabled=bool(mode))
                            tag = f"{'w' if mode else ''}{chats}-{n}-"
                            # Latency: messages paced (one every 50 ms), so each is measured on its own.
                            _, paced = run_round(http, sim_url, chats, min(args.messages, 100), "lat" + tag, True)
                            latencies[mode] += paced
                            # Throughput: a burst, as fast as the simulator takes them.
                            elapsed, _ = run_round(http, sim_url, chats, args.messages, "tp" + tag, False)
                            rates[mode].append(args.messages / elapsed)
                    for mode in modes:
                        figures.append((mode, chats, latencies[mode], statistics.median(rates[mode])))
            hooked = sum(len(r.requests) for r in receivers)
        finally:
            if hooks_worker is not None:
                stop(hooks_worker)
            stop(agent, timeout=60)
            stop(sim)
            for receiver in receivers:
                receiver.stop()
    print("pipeline: delivery by the simulator → reply in its outbox (real bot, Chromium, rate limit off)")
    print(f"  {args.rounds} rounds per setting; latency over {min(args.messages, 100)} paced messages a round, "
          f"throughput the median of {args.messages}-message bursts")
    base: dict[int, float] = {}
    for label, chats, latencies, rate in figures:
        p50 = percentile(latencies, 50)
        ratio = f"  (p50 ×{p50 / base[chats]:.2f} of without)" if label else ""
        base.setdefault(chats, p50)
        print(f"  {chats:>2} chat(s){' ' + label if label else ''}: latency ms p50 {p50:6.1f}  p99 "
              f"{percentile(latencies, 99):6.1f}  |  burst throughput {rate:6.1f} messages/s{ratio}")
    if args.slow_receivers:
        print(f"  webhook requests received while the receivers were on: {hooked}")


if __name__ == "__main__":
    main()
