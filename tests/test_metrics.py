"""Prometheus metrics: web's /metrics (real gunicorn) and a fleet agent's FLEET_METRICS_PORT, parsed
with prometheus_client's own text parser, and their series moving as workers start and crash."""

from __future__ import annotations

import base64
import os
import signal
import time

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from flowhq.metric_buffer import MetricBuffer, metric_buffer
from flowhq.redis_metrics import RedisCounter, RedisHistogram, hash_key
from tests.harness import ROOT, Fleet, free_port, gunicorn, wait_for
from tests.waits import wait_host, wait_running, worker
from workers import lifecycle

pytestmark = pytest.mark.integration
PASSWORD = "metrics-pass-123"
TOKEN = "metrics-token-for-tests-0123456789"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels), as prometheus_client's parser reads the text."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def web(transactional_db, tmp_path):
    """Real gunicorn with two worker processes (as the Procfile runs it), METRICS_TOKEN set."""
    users = get_user_model().objects
    users.create_user(username="staff", password=PASSWORD, is_staff=True)
    users.create_user(username="someone", password=PASSWORD)
    with gunicorn(tmp_path / "gunicorn.log", workers=2, METRICS_TOKEN=TOKEN, METRICS_FLUSH_INTERVAL_MS="200") as base:
        yield base


def scrape(base: str) -> dict:
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.text)


def test_redis_counters_and_histograms_read_back_as_prometheus_families(db, redis_client):
    counter = RedisCounter("flowhq_test_things", "Things.", ("kind",))
    histogram = RedisHistogram("flowhq_test_wait_seconds", "Waits.", ("kind",), (0.1, 1.0))
    for _ in range(3):
        counter.inc("unit", "a")
    for seconds in (0.05, 0.1, 0.5, 7.0):
        histogram.observe("unit", "a", seconds=seconds)
    assert metric_buffer().flush()
    things = counter.family(redis_client.hgetall(hash_key("unit", counter.name)))
    waits = histogram.family(redis_client.hgetall(hash_key("unit", histogram.name)), extra={"host": "h"})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in [*things.samples, *waits.samples]}
    assert samples[("flowhq_test_things_total", (("kind", "a"),))] == 3
    # Cumulative buckets; a value equal to a bound is in that bucket (le).
    assert samples[("flowhq_test_wait_seconds_bucket", (("host", "h"), ("kind", "a"), ("le", "0.1")))] == 2
    assert samples[("flowhq_test_wait_seconds_bucket", (("host", "h"), ("kind", "a"), ("le", "1.0")))] == 3
    assert samples[("flowhq_test_wait_seconds_bucket", (("host", "h"), ("kind", "a"), ("le", "+Inf")))] == 4
    assert samples[("flowhq_test_wait_seconds_count", (("host", "h"), ("kind", "a")))] == 4
    assert samples[("flowhq_test_wait_seconds_sum", (("host", "h"), ("kind", "a")))] == pytest.approx(7.65)


def test_counting_while_redis_is_down_neither_fails_nor_waits_and_sends_later(redis_client):
    buffer = MetricBuffer(f"redis://127.0.0.1:{free_port()}/9", interval_s=3600)  # nothing listens there
    started = time.perf_counter()
    for _ in range(1000):
        buffer.add("flowhq:metrics:unit:outage", "a")
    assert time.perf_counter() - started < 0.1
    started = time.perf_counter()
    assert buffer.flush() is False
    assert time.perf_counter() - started < 2  # short timeouts, on the buffer's own thread in real use
    buffer._client = redis.Redis.from_url(django_settings.REDIS_URL)  # Redis is back
    assert buffer.flush() is True
    assert int(redis_client.hget("flowhq:metrics:unit:outage", "a")) == 1000


def test_metrics_are_refused_without_staff_or_the_token(web):
    url = f"{web}/metrics"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "authentication_failed"
    not_staff = requests.get(url, headers={"Authorization": basic("someone", PASSWORD)}, timeout=10)
    assert not_staff.status_code == 403
    assert not_staff.json()["error"]["code"] == "permission_denied"
    staff = requests.get(url, headers={"Authorization": basic("staff", PASSWORD)}, timeout=10)
    assert staff.status_code == 200
    assert parse(staff.text)  # prometheus_client's parser reads it
    # Prometheus' own Accept header, and one that names only the text format: no 406.
    for accept in ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                   "text/plain"):
        answer = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept}, timeout=10)
        assert answer.status_code == 200


def test_without_a_metrics_token_only_staff_may_read(transactional_db, live_server, settings):
    settings.METRICS_TOKEN = ""
    get_user_model().objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    url = f"{live_server.url}/metrics"
    refused = requests.get(url, headers={"Authorization": "Bearer "}, timeout=10)
    assert refused.status_code == 401
    refused = requests.get(url, headers={"Authorization": "Bearer anything"}, timeout=10)
    assert refused.status_code == 401
    assert "METRICS_TOKEN is not set" in refused.json()["error"]["message"]
    assert requests.get(url, headers={"Authorization": basic("staff", PASSWORD)}, timeout=10).status_code == 200


def test_request_metrics_count_every_gunicorn_process_by_route_and_status_class(web):
    route = ("flowhq_http_requests_total", "GET", "2xx", "flowhq.urls.healthz")
    # The fixture's own /healthz calls are counted first (each process sends every 200 ms).
    wait_for(lambda: value(scrape(web), route[0], method=route[1], status_class=route[2], route=route[3]), 10,
             what="the fixture's requests counted")
    time.sleep(0.5)
    before = value(scrape(web), route[0], method=route[1], status_class=route[2], route=route[3]) or 0
    for _ in range(20):  # spread over both gunicorn processes
        requests.get(f"{web}/healthz", timeout=10)
    requests.get(f"{web}/no/such/page", timeout=10)

    def counted() -> dict | None:
        samples = scrape(web)
        now = value(samples, route[0], method=route[1], status_class=route[2], route=route[3]) or 0
        return samples if now - before == 20 else None

    samples = wait_for(counted, 10, what="20 more requests counted")
    assert value(samples, "flowhq_http_requests_total", method="GET", status_class="4xx", route="unmatched") >= 1
    assert value(samples, "flowhq_http_request_duration_seconds_count", route="flowhq.urls.healthz") >= 20
    assert value(samples, "flowhq_scrape_source_up", source="database") == 1
    assert value(samples, "flowhq_scrape_source_up", source="redis") == 1


def test_workers_by_status_and_host_move_when_a_worker_starts(web, fleet: Fleet, tenant):
    host = fleet.new_host()
    fleet.agent(host)
    wait_host(host)
    samples = scrape(web)
    assert value(samples, "flowhq_fleet_host_live", host=host) == 1
    assert value(samples, "flowhq_fleet_host_capacity", host=host) == 20
    assert value(samples, "flowhq_workers", status="RUNNING", host=host) == 0
    assert value(samples, "flowhq_workers", status="STOPPED", host="none") == 1
    assert value(samples, "flowhq_sessions", state="NEW") == 1
    assert value(samples, "flowhq_tenants", status="NEW") == 1
    assert value(samples, "flowhq_messages_pending", direction="in") == 0
    assert value(samples, "flowhq_webhook_backlog") == 0  # webhooks.selectors.backlog_count()
    assert value(samples, "flowhq_scrape_source_up", source="webhooks") == 1

    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_running(tenant.pk)
    samples = scrape(web)
    assert value(samples, "flowhq_workers", status="RUNNING", host=host) == 1
    assert value(samples, "flowhq_workers", status="STOPPED", host="none") == 0
    assert value(samples, "flowhq_tenants", status="RUNNING") == 1


def test_the_agent_endpoint_shows_a_crash_and_the_restart_after_kill_9(fleet: Fleet, tenant, redis_client):
    port = free_port()
    host = fleet.new_host()
    fleet.agent(host, FLEET_METRICS_PORT=str(port), WORKER_MEMORY_CHECK_MS="300")
    wait_host(host)
    url = f"http://127.0.0.1:{port}/metrics"
    labels = {"host": host, "tenant": str(tenant.pk)}

    def agent_samples() -> dict:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200
        return parse(response.text)

    # Counters of a tenant that no longer exists are left out, and deleted from Redis.
    gone = hash_key(f"tenant:{host}", "flowhq_tenant_reconnects")
    redis_client.hset(gone, str(tenant.pk + 1000), 3)
    samples = wait_for(agent_samples, 30, what="the agent's metrics endpoint")
    assert value(samples, "flowhq_fleet_agent_capacity", host=host) == 20
    assert not redis_client.hexists(gone, str(tenant.pk + 1000))
    assert value(samples, "flowhq_tenant_reconnects_total", host=host, tenant=str(tenant.pk + 1000)) is None
    assert value(samples, "flowhq_fleet_worker_up", **labels) is None

    lifecycle.worker_start(tenant_id=tenant.pk)
    first = wait_running(tenant.pk).pid
    samples = wait_for(lambda: (s := agent_samples()) and (value(s, "flowhq_fleet_worker_memory_private_bytes", **labels)
                                                          or 0) > 10_000_000 and s, 30, what="private memory measured")
    assert value(samples, "flowhq_fleet_worker_up", **labels) == 1
    assert value(samples, "flowhq_fleet_agent_workers", host=host) == 1
    assert value(samples, "flowhq_fleet_worker_crashes_total", **labels) is None

    os.kill(first, signal.SIGKILL)
    samples = wait_for(lambda: (s := agent_samples()) and value(s, "flowhq_fleet_worker_crashes_total", **labels)
                       and s, 30, what="the crash counted")
    assert value(samples, "flowhq_fleet_worker_crashes_total", **labels) == 1
    wait_running(tenant.pk, not_pid=first)
    samples = wait_for(lambda: (s := agent_samples()) and value(s, "flowhq_fleet_worker_up", **labels) == 1 and s,
                       30, what="up again")
    assert value(samples, "flowhq_fleet_worker_restarts_total", **labels) == 1
    assert value(samples, "flowhq_fleet_worker_crashes_total", **labels) == 1
    assert value(samples, "flowhq_fleet_scrape_source_up", host=host, source="database") == 1
    assert worker(tenant.pk).restart_count == 1


def test_a_source_that_cannot_be_read_is_left_out_and_said_so(db, tenant):
    from metrics.collector import FleetCollector

    collector = FleetCollector()
    collector._redis = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/9", socket_connect_timeout=0.5)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in collector.collect() for s in f.samples}
    assert value(samples, "flowhq_scrape_source_up", source="redis") == 0
    assert value(samples, "flowhq_scrape_source_up", source="database") == 1
    assert value(samples, "flowhq_tenants", status="NEW") == 1


def test_the_dashboard_uses_only_metrics_flowhq_serves():
    import json
    import re

    served = set()
    for path in ("metrics/collector.py", "metrics/http_requests.py", "tenants/counters.py",
                 "workers/fleet/exporter.py"):
        served |= set(re.findall(r'"(flowhq_[a-z_]+)"', (ROOT / path).read_text()))
    dashboard = json.loads((ROOT / "deploy/grafana/flowhq.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name) for e in exprs for name in re.findall(r"flowhq_[a-z_]+", e)}
    assert used
    assert used <= served, used - served
