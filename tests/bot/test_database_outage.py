"""The database goes away under real bots: nothing is lost, nothing moves, per-chat order holds.

The fleet's processes (agents, tenant workers, beat) reach PostgreSQL through a proxy the test
cuts (tests/dbproxy.py): their connections end mid-session, as in a server restart, and new ones
are refused until it is lifted. The test reads and checks through its own direct connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from tenants import services
from tenants.models import MessageLog, Tenant
from tests.botkit import Sim, link, start_agent
from tests.dbproxy import PostgresProxy
from tests.harness import Fleet, wait_for
from tests.waits import worker
from workers.models import WorkerTransition

pytestmark = pytest.mark.integration
CHATS = 5
PER_CHAT = 10


@pytest.fixture
def db_proxy(transactional_db) -> Iterator[PostgresProxy]:
    """Requested before the fleet, so the fleet is stopped before the proxy closes."""
    proxy = PostgresProxy()
    try:
        yield proxy
    finally:
        proxy.close()


def numbered_templates(tenant: Tenant) -> None:
    """`qK` is answered `aK`, so each reply says which message it answers."""
    for k in range(PER_CHAT):
        services.template_create(tenant=tenant, match="exact", pattern=f"q{k}", body=f"a{k}")


def customer(n: int) -> str:
    return f"49170000001{n:02d}"


def terminate_fleet_backends() -> int:
    """What a server restart does first: every session but ours ends (AdminShutdown)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def replies_by_chat(sim: Sim, phone: str) -> dict[str, list[str]]:
    chats: dict[str, list[str]] = {}
    for entry in sim.outbox(phone):
        chats.setdefault(entry["to"].split("@")[0], []).append(entry["body"])
    return chats


def all_answered(tenants: list[Tenant], count: int) -> bool:
    return MessageLog.objects.filter(tenant__in=tenants, direction="in", status="replied").count() == count


def fleet_state(tenants: list[Tenant]) -> dict[int, tuple[str, int, int | None, str]]:
    return {t.pk: (w.host, w.epoch, w.pid, w.status) for t in tenants for w in [worker(t.pk)]}


def linked_shops(fleet: Fleet, sim: Sim, make_tenant, proxy: PostgresProxy, *,
                 agents: int) -> tuple[list[Tenant], dict[int, str]]:
    """Two linked tenants answering `qK` with `aK`, on `agents` hosts and beat, whose processes
    reach the database through `proxy`."""
    fleet.env.update(DATABASE_URL=proxy.url(), BOT_RECONCILE_INTERVAL_MS="1000")
    tenants = [make_tenant(f"Shop {n}", rate_limit_per_minute=1000) for n in range(2)]
    for tenant in tenants:
        numbered_templates(tenant)
    for _ in range(agents):
        start_agent(fleet)
    fleet.beat()
    phones = {t.pk: f"4915100000{t.pk:03d}" for t in tenants}
    for tenant in tenants:
        link(tenant.pk, sim, phones[tenant.pk])
    return tenants, phones


def test_a_database_restart_under_a_100_message_flow_loses_nothing(db_proxy, bot_fleet: Fleet, sim: Sim,
                                                                     make_tenant):
    tenants, phones = linked_shops(bot_fleet, sim, make_tenant, db_proxy, agents=1)
    before = fleet_state(tenants)

    def flow() -> None:
        # 100 messages over 10 s: message k of every chat of every tenant, then k + 1.
        for k in range(PER_CHAT):
            for c in range(CHATS):
                for tenant in tenants:
                    sim.message(phones[tenant.pk], f"T{tenant.pk}C{c}K{k}", customer(c), f"q{k}")
                    time.sleep(0.1)

    sender = threading.Thread(target=flow)
    sender.start()
    time.sleep(3)
    assert terminate_fleet_backends() > 0
    with db_proxy.outage():
        time.sleep(3)
    sender.join()
    total = CHATS * PER_CHAT * len(tenants)
    wait_for(lambda: all_answered(tenants, total), 90, what=f"all {total} messages answered")
    time.sleep(2)  # long enough for a doubled reply to show
    for tenant in tenants:
        chats = replies_by_chat(sim, phones[tenant.pk])
        # Once each, and in each chat in the order its messages came.
        assert chats == {customer(c): [f"a{k}" for k in range(PER_CHAT)] for c in range(CHATS)}, chats
    assert db_proxy.refused > 0  # the fleet did try to reach the database while it was out
    assert fleet_state(tenants) == before  # no worker restarted or moved
    output = "".join(proc.output() for proc in bot_fleet.procs)
    assert "database unavailable: holding WhatsApp events until it is back" in output
    assert "database back: held events written" in output


def test_a_30s_database_outage_moves_no_tenant_and_loses_no_message(db_proxy, bot_fleet: Fleet, sim: Sim,
                                                                      make_tenant):
    tenants, phones = linked_shops(bot_fleet, sim, make_tenant, db_proxy, agents=2)
    before = fleet_state(tenants)
    started = time.time()
    with db_proxy.outage():
        time.sleep(5)
        for tenant in tenants:  # WhatsApp still delivers to the page meanwhile
            for k in range(3):
                sim.message(phones[tenant.pk], f"OUT{tenant.pk}K{k}", customer(0), f"q{k}")
        time.sleep(25)
    wait_for(lambda: all_answered(tenants, 3 * len(tenants)), 60, what="the messages of the outage answered")
    time.sleep(5)  # several sweeps after the database came back
    assert fleet_state(tenants) == before
    assert not WorkerTransition.objects.filter(worker__tenant__in=tenants, to_status="ERROR").exists()
    assert [Tenant.objects.get(pk=t.pk).status for t in tenants] == ["RUNNING"] * len(tenants)
    for tenant in tenants:
        assert replies_by_chat(sim, phones[tenant.pk]) == {customer(0): ["a0", "a1", "a2"]}
    # The sweeps ran after the outage, and held back until heartbeats could have come.
    output = "".join(proc.output() for proc in bot_fleet.procs)
    assert "the sweep was blind" in output
    assert time.time() - started > 30
