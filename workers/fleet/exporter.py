"""The fleet agent's Prometheus endpoint: this host's figures on `FLEET_METRICS_PORT`.

Per tenant placed here: whether its worker is up, its process tree's PSS (as the
agent last measured it, every WORKER_MEMORY_CHECK_MS — a scrape measures nothing),
the restarts and crashes this agent saw, and the counters the tenant workers of
this host keep in Redis (tenants/counters.py). One target per host, whatever the
number of tenants on it. Everything is read when Prometheus scrapes; a part that
cannot be read (the database, Redis) is left out and `flowhq_fleet_scrape_source_up`
says which, so a scrape never fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

import redis
from django.conf import settings
from django.db import connection
from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flowhq.log_throttle import ThrottledWarning
from flowhq.redis_metrics import SEP, hash_key
from tenants.counters import FAMILIES, tenant_scope
from tenants.models import Tenant
from workers.models import WorkerProcess
from workers.states import DesiredState

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from workers.fleet.agent import FleetAgent

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")


def _snapshot(mapping: Mapping[K, V]) -> dict[K, V]:
    """A copy of a dict the supervisor thread may be changing meanwhile."""
    for _ in range(10):
        try:
            return dict(mapping)
        except RuntimeError:  # changed size during the copy
            continue
    return {}


class AgentCollector(Collector):
    def __init__(self, agent: FleetAgent) -> None:
        self.agent = agent
        self.redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        self._failed = ThrottledWarning(log, "fleet metrics: a source could not be read")

    def collect(self) -> Iterator[Metric]:
        host = self.agent.host
        sources = GaugeMetricFamily("flowhq_fleet_scrape_source_up",
                                    "1 if this scrape could read the source (database, redis).",
                                    labels=["host", "source"])
        hashes = self._read_counters(sources)
        in_hashes = {_tenant_of(field) for raw in (hashes or []) for field in raw} - {None}
        wanted, existing = self._read_database(sources, in_hashes)
        yield from self._processes(wanted)
        for family, raw in zip(FAMILIES, hashes or [], strict=False):
            if existing is not None:
                raw = self._prune(hash_key(tenant_scope(host), family.name), raw, existing)
            yield family.family(raw, extra={"host": host})
        yield sources

    def _read_database(self, sources: GaugeMetricFamily,
                       tenant_ids: set[int | None]) -> tuple[set[int], set[int] | None]:
        """Tenants that should run on this host, and which of `tenant_ids` exist (None: unknown)."""
        try:
            wanted = set(WorkerProcess.objects.filter(host=self.agent.host, desired_state=DesiredState.RUNNING)
                         .values_list("tenant_id", flat=True))
            existing = set(Tenant.objects.filter(pk__in=tenant_ids).values_list("id", flat=True))
            sources.add_metric([self.agent.host, "database"], 1)
            return wanted, existing
        except Exception as exc:
            self._failed("database", exc)
            sources.add_metric([self.agent.host, "database"], 0)
            return set(), None
        finally:
            connection.close()  # each scrape runs on a thread of its own

    def _processes(self, wanted: set[int]) -> Iterator[Metric]:
        agent, host = self.agent, self.agent.host
        children = _snapshot(agent.children)
        labels = ["host", "tenant"]
        up = GaugeMetricFamily("flowhq_fleet_worker_up", "1 if the tenant's worker process runs on this host "
                               "(0: it should, but has crashed or is waiting to restart).", labels=labels)
        pss = GaugeMetricFamily("flowhq_fleet_worker_memory_pss_bytes",
                                "PSS of the worker's whole process tree (Chromium included), last measured.",
                                labels=labels)
        for tenant_id in sorted(wanted | set(children)):
            child = children.get(tenant_id)
            up.add_metric([host, str(tenant_id)], int(child is not None and child.stop_requested_at is None))
            if child is not None and child.pss_mb is not None:
                pss.add_metric([host, str(tenant_id)], child.pss_mb * 1024 * 1024)
        restarts = CounterMetricFamily("flowhq_fleet_worker_restarts",
                                       "Worker processes this agent spawned for a tenant that had one before.",
                                       labels=labels)
        for tenant_id, count in sorted(_snapshot(agent.restarts).items()):
            restarts.add_metric([host, str(tenant_id)], count)
        crashes = CounterMetricFamily("flowhq_fleet_worker_crashes",
                                      "Worker processes that exited (or vanished) without this agent asking them to.",
                                      labels=labels)
        for tenant_id, count in sorted(_snapshot(agent.crashes).items()):
            crashes.add_metric([host, str(tenant_id)], count)
        yield up
        yield pss
        yield restarts
        yield crashes
        yield _one("flowhq_fleet_agent_workers", "Worker processes this agent supervises.", host, len(children))
        yield _one("flowhq_fleet_agent_capacity", "Tenant workers this host takes (FLEET_CAPACITY).",
                   host, agent.capacity)

    def _read_counters(self, sources: GaugeMetricFamily) -> list[dict[bytes, bytes]] | None:
        """The tenant workers' counters of this host (tenants/counters.py), one hash per family."""
        host = self.agent.host
        try:
            pipe = self.redis.pipeline(transaction=False)
            for family in FAMILIES:
                pipe.hgetall(hash_key(tenant_scope(host), family.name))
            hashes: list[dict[bytes, bytes]] = pipe.execute()
        except Exception as exc:
            self._failed("redis", exc)
            sources.add_metric([host, "redis"], 0)
            return None
        sources.add_metric([host, "redis"], 1)
        return hashes

    def _prune(self, key: str, raw: dict[bytes, bytes], existing: set[int]) -> dict[bytes, bytes]:
        """Leave out, and delete, the series of tenants that no longer exist."""
        gone = [field for field in raw if _tenant_of(field) not in existing]
        if gone:
            try:
                self.redis.hdel(key, *gone)
            except Exception as exc:
                self._failed("redis", exc)
        return {field: value for field, value in raw.items() if field not in gone}


def _tenant_of(field: bytes) -> int | None:
    head = field.split(SEP.encode(), 1)[0]
    return int(head) if head.isdigit() else None


def _one(name: str, documentation: str, host: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["host"])
    family.add_metric([host], value)
    return family


def serve(agent: FleetAgent, *, port: int, addr: str) -> WSGIServer | None:
    """Start the endpoint on its own threads; None when it is off (port 0) or cannot listen."""
    if port == 0:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    try:
        server, _ = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        log.warning("fleet metrics endpoint could not listen; the agent runs without it",
                    extra={"addr": addr, "port": port, "error": str(exc)})
        return None
    log.info("fleet metrics endpoint listening", extra={"addr": addr, "port": port})
    return server
