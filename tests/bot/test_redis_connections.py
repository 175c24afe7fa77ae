"""A working tenant worker holds three Redis connections, and the operators' tools still reach it.

Counted the way Redis sees them (CLIENT LIST), matched to the worker's process tree by port,
after the bot answered through the rate limiter and counted the answer.
"""

from __future__ import annotations

import psutil
import pytest
import redis

from flowhq.celery import app
from tenants import services
from tests.botkit import Sim, link, start_agent, worker
from tests.harness import wait_for

pytestmark = pytest.mark.integration
PHONE = "4915100000001"
CUSTOMER = "4917000000001"


def redis_connections(client: redis.Redis, pid: int) -> list[dict]:
    """The Redis clients whose other end is `pid` or one of its descendants."""
    root = psutil.Process(pid)
    ports = set()
    for proc in (root, *root.children(recursive=True)):
        try:
            ports |= {c.laddr.port for c in proc.net_connections("tcp") if c.raddr}
        except psutil.Error:
            continue
    return [c for c in client.client_list() if int(c["addr"].rsplit(":", 1)[1]) in ports]


def test_a_replying_bot_holds_three_redis_connections_and_answers_ping_and_inspect(
        bot_fleet, sim: Sim, tenant, redis_client):
    host = start_agent(bot_fleet, METRICS_FLUSH_INTERVAL_MS="200")
    services.template_create(tenant=tenant, match="default", body="Thanks, noted.")
    link(tenant.pk, sim, PHONE)
    for n, message_id in enumerate(("M-1", "M-2", "M-3"), start=1):
        sim.message(PHONE, message_id, CUSTOMER, "hello")
        wait_for(lambda n=n: len(sim.replies(PHONE, "Thanks, noted.")) == n, 30, what=f"reply {n}")

    clients = redis_connections(redis_client, worker(tenant.pk).pid)
    commands = sorted(c["cmd"] for c in clients)
    assert len(clients) <= 3, commands
    assert {"brpop", "psubscribe"} <= set(commands), commands

    node = f"tenant-{tenant.pk}@{host}"
    assert app.control.ping(destination=[node], timeout=5) == [{node: {"ok": "pong"}}]
    queues = app.control.inspect(destination=[node], timeout=5).active_queues()
    assert [q["name"] for q in queues[node]] == [f"tenant.{tenant.pk}"]
    assert len(redis_connections(redis_client, worker(tenant.pk).pid)) <= 3
