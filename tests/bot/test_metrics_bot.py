"""Per-tenant counters of a real bot (Chromium against the simulator), as its host's agent serves them."""

from __future__ import annotations

import pytest
import requests

from tenants import services
from tests.botkit import Sim, link, start_agent, wait_session
from tests.harness import Fleet, free_port, wait_for
from tests.test_metrics import parse, value

pytestmark = pytest.mark.integration
PHONE = "4915100000001"
CUSTOMER = "4917000000001"


def test_an_answered_message_and_a_reconnect_move_the_tenants_counters(bot_fleet: Fleet, sim: Sim, tenant):
    port = free_port()
    host = start_agent(bot_fleet, FLEET_METRICS_PORT=str(port), METRICS_FLUSH_INTERVAL_MS="200")
    services.template_create(tenant=tenant, match="default", body="Thanks, noted.")
    link(tenant.pk, sim, PHONE)
    tenant_labels = {"host": host, "tenant": str(tenant.pk)}
    answered = {**tenant_labels, "direction": "in", "status": "replied", "source": "customer"}
    sent = {**tenant_labels, "direction": "out", "status": "sent", "source": "bot"}

    def scrape() -> dict:
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert response.status_code == 200
        return parse(response.text)

    before = scrape()
    assert value(before, "flowhq_tenant_messages_total", **answered) is None
    for n, message_id in enumerate(("M-1", "M-2"), start=1):
        sim.message(PHONE, message_id, CUSTOMER, "hello")
        wait_for(lambda n=n: len(sim.replies(PHONE, "Thanks, noted.")) == n, 30, what=f"reply {n}")
        samples = wait_for(lambda n=n: (s := scrape()) and value(s, "flowhq_tenant_messages_total", **answered) == n
                           and s, 10, what=f"message {n} counted")
        assert value(samples, "flowhq_tenant_messages_total", **sent) == n
        assert value(samples, "flowhq_tenant_reply_latency_seconds_count", **tenant_labels) == n
        assert value(samples, "flowhq_tenant_reply_latency_seconds_sum", **tenant_labels) > 0
    assert value(samples, "flowhq_fleet_worker_up", **tenant_labels) == 1
    assert value(samples, "flowhq_fleet_scrape_source_up", host=host, source="redis") == 1
    assert value(samples, "flowhq_tenant_reconnects_total", **tenant_labels) is None

    sim.call("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 3000}, expect=200)
    wait_session(tenant.pk, "DISCONNECTED", timeout=20)
    wait_session(tenant.pk, "CONNECTED", timeout=60)
    samples = wait_for(lambda: (s := scrape()) and value(s, "flowhq_tenant_reconnects_total", **tenant_labels)
                       and s, 10, what="the reconnect attempts counted")
    assert value(samples, "flowhq_tenant_reconnects_total", **tenant_labels) >= 1
    assert value(samples, "flowhq_tenant_messages_total", **answered) == 2


def test_a_send_that_waits_for_the_rate_limit_is_counted_once(bot_fleet: Fleet, sim: Sim, tenant):
    port = free_port()
    host = start_agent(bot_fleet, FLEET_METRICS_PORT=str(port), METRICS_FLUSH_INTERVAL_MS="200",
                       RATE_LIMIT_WINDOW_MS="3000")
    services.tenant_update(tenant=tenant, rate_limit_per_minute=1)
    services.template_create(tenant=tenant, match="default", body="One at a time.")
    link(tenant.pk, sim, PHONE)
    sim.message(PHONE, "R-1", CUSTOMER, "first")
    sim.message(PHONE, "R-2", CUSTOMER, "second")
    wait_for(lambda: len(sim.replies(PHONE, "One at a time.")) == 2, 30, what="both replies")
    labels = {"host": host, "tenant": str(tenant.pk)}

    def waits() -> float | None:
        response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        return value(parse(response.text), "flowhq_tenant_rate_limit_waits_total", **labels)

    assert wait_for(waits, 10, what="the wait counted") == 1
