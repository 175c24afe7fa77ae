"""Webhook figures: deliveries per second through one `webhooks` worker (the Procfile's command:
threads pool, WEBHOOK_CONCURRENCY threads) to a fast receiver on loopback, and the time from the
outbox row to the receiver, p50/p99.

    .venv/bin/python bench/bench_webhooks.py [--events 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start, stop, use_throwaway_resources, wait_for


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}


def fast_receiver(counter: Counter) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with counter.lock:
                counter.arrived.setdefault(self.headers["webhook-id"], time.time())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    use_throwaway_resources("webhooks", redis_db=13, WEBHOOK_ALLOW_PRIVATE="1", WEBHOOK_SWEEP_INTERVAL_MS="1000")
    from django.db import transaction

    from tenants import services as tenant_services
    from webhooks import services
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent

    counter = Counter()
    server = fast_receiver(counter)
    tenant = tenant_services.tenant_create(name="bench webhooks", slug="bench-webhooks")
    services.endpoint_create(tenant=tenant, url=f"http://127.0.0.1:{server.server_address[1]}/in", events=["*"])
    with tempfile.TemporaryDirectory() as tmp_dir:
        worker = start([sys.executable, "-m", "celery", "-A", "flowhq", "worker", "-Q", "webhooks",
                        "-n", "webhooks-bench@%h", "--pool", "threads", "--concurrency", str(args.concurrency),
                        "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
                       Path(tmp_dir) / "webhooks.log")
        try:
            # Warm-up: the worker is ready once a first event arrives.
            services.event_record(tenant_id=tenant.pk, event_type="webhook.test", data={"tenant_id": tenant.pk})
            wait_for(lambda: counter.arrived, 60)
            counter.arrived.clear()
            # One transaction: the deliveries are queued when it commits, so the worker, not this
            # writer, is what is measured.
            began = time.time()
            with transaction.atomic():
                for n in range(args.events):
                    services.event_record(tenant_id=tenant.pk, event_type="message.received",
                                          data={"tenant_id": tenant.pk, "n": n})
                written = time.time() - began
                began = time.time()
            queued = time.time() - began
            wait_for(lambda: len(counter.arrived) >= args.events, 600, interval=0.1)
            elapsed = max(counter.arrived.values()) - began
        finally:
            stop(worker)
            server.shutdown()
    created = dict(WebhookEvent.objects.values_list("event_id", "created_at"))
    lags = [(at - created[event_id].timestamp()) * 1000 for event_id, at in counter.arrived.items()]
    delivered = WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
    print(f"webhooks: {args.events} events through one webhooks worker ({args.concurrency} threads) "
          "to a fast receiver on loopback")
    print(f"  {args.events / elapsed:7.1f} deliveries/s  ({elapsed:.1f} s; outbox written at "
          f"{args.events / written:.0f} events/s, queued in {queued:.1f} s)  |  outbox row → receiver ms p50 "
          f"{percentile(lags, 50):.1f}  p99 {percentile(lags, 99):.1f}  |  {delivered - 1} delivered, "
          f"{len(counter.arrived)} distinct ids received")


if __name__ == "__main__":
    main()
