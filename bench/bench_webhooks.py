"""Webhook figures: deliveries per second through one `webhooks` worker (the Procfile's command:
threads pool, WEBHOOK_CONCURRENCY threads) to a fast receiver on loopback, and the time from the
outbox row to the receiver, p50/p99.

    .venv/bin/python bench/bench_webhooks.py [--events 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, start, stop, use_throwaway_resources, wait_for
from tests.webhooks.receiver import Receiver


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    use_throwaway_resources("webhooks", redis_db=13, WEBHOOK_ALLOW_PRIVATE="1")
    from django.db import transaction

    from tenants import services as tenant_services
    from webhooks import services
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent

    receiver = Receiver(then=204).start()
    tenant = tenant_services.tenant_create(name="bench webhooks", slug="bench-webhooks")
    services.endpoint_create(tenant=tenant, url=receiver.url, events=["*"])

    def arrived() -> dict[str, float]:
        with receiver.lock:
            requests = list(receiver.requests)
        first: dict[str, float] = {}
        for request in requests:
            first.setdefault(request.headers["webhook-id"], request.wall)
        return first

    with tempfile.TemporaryDirectory() as tmp_dir:
        worker = start([sys.executable, "-m", "celery", "-A", "flowhq", "worker", "-Q", "webhooks",
                        "-n", "webhooks-bench@%h", "--pool", "threads", "--concurrency", str(args.concurrency),
                        "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
                       Path(tmp_dir) / "webhooks.log")
        try:
            # Warm-up: the worker is ready once a first event arrives.
            services.event_record(tenant_id=tenant.pk, event_type="webhook.test", data={"tenant_id": tenant.pk})
            wait_for(arrived, 60)
            with receiver.lock:
                receiver.requests.clear()
            # One transaction: its rows are due when it commits, so the relay and the worker, not
            # this writer, are what is measured.
            began = time.time()
            with transaction.atomic():
                for n in range(args.events):
                    services.event_record(tenant_id=tenant.pk, event_type="message.received",
                                          data={"tenant_id": tenant.pk, "n": n})
                written = time.time() - began
                began = time.time()
            wait_for(lambda: len(arrived()) >= args.events, 600, interval=0.1)
            got = arrived()
            elapsed = max(got.values()) - began
        finally:
            stop(worker)
            receiver.stop()
    created = dict(WebhookEvent.objects.values_list("event_id", "created_at"))
    lags = [(at - created[event_id].timestamp()) * 1000 for event_id, at in got.items()]
    delivered = WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count()
    print(f"webhooks: {args.events} events through one webhooks worker ({args.concurrency} threads) "
          "to a fast receiver on loopback")
    print(f"  {args.events / elapsed:7.1f} deliveries/s  ({elapsed:.1f} s; outbox written at "
          f"{args.events / written:.0f} events/s)  |  outbox row → receiver ms p50 "
          f"{percentile(lags, 50):.1f}  p99 {percentile(lags, 99):.1f}  |  {delivered - 1} delivered, "
          f"{len(got)} distinct ids received")


if __name__ == "__main__":
    main()
