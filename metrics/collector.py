"""What web's /metrics serves: fleet-wide gauges read from the database on each scrape, the
request metrics of every web process (from Redis), and the webhook backlog.

A source that cannot be read (the database, Redis, the webhooks app) is left out of that
scrape, `flowhq_scrape_source_up{source}` is 0 for it, and a warning is logged at most once
a minute: a scrape answers 200 whenever web does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flowhq.log_throttle import ThrottledWarning
from flowhq.redis_metrics import hash_key
from metrics import http_requests, selectors
from tenants.states import SessionState, TenantStatus
from workers.states import WorkerStatus

log = logging.getLogger(__name__)


class FleetCollector(Collector):
    def __init__(self) -> None:
        self._redis: redis.Redis | None = None
        self._failed = ThrottledWarning(log, "metrics: a source could not be read")

    def collect(self) -> Iterator[Metric]:
        sources = GaugeMetricFamily("flowhq_scrape_source_up", "1 if this scrape could read the source.",
                                    labels=["source"])
        for source, read in (("database", self._database), ("redis", self._requests),
                             ("webhooks", self._webhooks)):
            try:
                families = list(read())
            except Exception as exc:
                self._failed(source, exc)
                sources.add_metric([source], 0)
                continue
            sources.add_metric([source], 1)
            yield from families
        yield sources

    def _database(self) -> Iterator[Metric]:
        hosts = selectors.fleet_hosts()
        by_host_status = selectors.workers_by_host_and_status()
        workers = GaugeMetricFamily("flowhq_workers", "Tenant worker records by status and host "
                                    "(host `none`: never placed).", labels=["status", "host"])
        host_names = sorted({"", *(h.name for h in hosts), *(host for host, _ in by_host_status)})
        for host in host_names:
            for status in WorkerStatus.values:
                workers.add_metric([status, host or "none"], by_host_status.get((host, status), 0))
        yield workers
        yield _by_value("flowhq_sessions", "WhatsApp sessions by state.", "state",
                        SessionState.values, selectors.sessions_by_state())
        yield _by_value("flowhq_tenants", "Tenants by status.", "status",
                        TenantStatus.values, selectors.tenants_by_status())
        live = GaugeMetricFamily("flowhq_fleet_host_live",
                                 "1 while the host's fleet agent heartbeats, 0 once it is stale.", labels=["host"])
        capacity = GaugeMetricFamily("flowhq_fleet_host_capacity", "Tenant workers the host takes.", labels=["host"])
        draining = GaugeMetricFamily("flowhq_fleet_host_draining", "1 if no new tenants are placed on the host.",
                                     labels=["host"])
        for figures in hosts:
            live.add_metric([figures.name], int(figures.live))
            capacity.add_metric([figures.name], figures.capacity)
            draining.add_metric([figures.name], int(figures.draining))
        yield live
        yield capacity
        yield draining
        yield _by_value("flowhq_fleet_hosts", "Registered hosts, live or stale.", "state", ["live", "stale"],
                        {"live": sum(h.live for h in hosts), "stale": sum(not h.live for h in hosts)})
        yield _by_value("flowhq_messages_pending", "Messages still to be answered (in) or sent (out).",
                        "direction", ["in", "out"], selectors.pending_messages_by_direction())

    def _requests(self) -> Iterator[Metric]:
        if self._redis is None:
            self._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        pipe = self._redis.pipeline(transaction=False)
        for family in http_requests.FAMILIES:
            pipe.hgetall(hash_key(http_requests.SCOPE, family.name))
        for family, raw in zip(http_requests.FAMILIES, pipe.execute(), strict=True):
            yield family.family(raw)

    def _webhooks(self) -> Iterator[Metric]:
        backlog = selectors.webhook_backlog()
        if backlog is not None:
            family = GaugeMetricFamily("flowhq_webhook_backlog", "Webhook events waiting to be delivered.")
            family.add_metric([], backlog)
            yield family


def _by_value(name: str, documentation: str, label: str, values: list[str],
              counts: dict[str, int]) -> GaugeMetricFamily:
    """One series per known value (zero included, so a series never vanishes), plus any other."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in [*values, *sorted(set(counts) - set(values))]:
        family.add_metric([value], counts.get(value, 0))
    return family


# One per process: the collector keeps its Redis connection pool between scrapes.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(FleetCollector())
