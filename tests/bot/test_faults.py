"""Faults around the bot: Redis goes away and comes back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis
import requests

from tenants import services
from tests.botkit import BOT_ENV, Sim, link, start_agent, worker
from tests.harness import ROOT, child_env, free_port, wait_for

pytestmark = pytest.mark.integration
PHONE = "4915100000001"


class PrivateRedis:
    """A redis-server of the test's own, so stopping it disturbs nobody else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: redis.Redis.from_url(self.url).ping(), 10, what="redis-server")
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    try:
        yield server
    finally:
        server.kill()


def test_a_redis_outage_delays_replies_but_loses_and_doubles_none(fleet, sim: Sim, tenant, tmp_path, private_redis):
    fleet.env.update(BOT_ENV, WHATSAPP_WEB_URL=sim.url, SESSIONS_PATH=str(tmp_path / "sessions"),
                     REDIS_URL=private_redis.url, BOT_RECONCILE_INTERVAL_MS="1000")
    template = services.template_create(tenant=tenant, match="default", body="ok")
    start_agent(fleet)
    link(tenant.pk, sim, PHONE)
    pid = worker(tenant.pk).pid
    sim.message(PHONE, "R0", "4917000000001", "before")
    wait_for(lambda: len(sim.outbox(PHONE)) == 1, 20, what="the first reply")

    private_redis.kill()
    for n in range(1, 4):
        sim.message(PHONE, f"R{n}", "4917000000001", f"during {n}")
    # An edit while the broker is down: its reload nudge is lost (it goes to a broker the bot
    # does not read), so only the bot's reconciliation with the database can pick it up.
    services.template_update(template=template, body="ok, edited")
    time.sleep(4)
    assert len(sim.outbox(PHONE)) == 1, "with the rate limiter unreachable, replies wait"
    assert worker(tenant.pk).status == "RUNNING", "the database heartbeat does not need Redis"
    assert worker(tenant.pk).pid == pid

    private_redis.start()
    replies = wait_for(lambda: (box := sim.outbox(PHONE)) and len(box) >= 4 and box, 60, what="the held replies")
    time.sleep(2)
    assert len(sim.outbox(PHONE)) == 4
    assert len({m["id"] for m in replies}) == 4
    sim.message(PHONE, "R4", "4917000000001", "after")
    assert wait_for(lambda: (box := sim.outbox(PHONE)) and len(box) == 5 and box, 20, what="a reply after")[-1][
        "body"] == "ok, edited"
    assert worker(tenant.pk).pid == pid


def test_the_api_answers_while_redis_is_down(tenant, staff_user, transactional_db, tmp_path):
    """Commands record intent in the database; the lost nudge is only latency."""
    from tests.conftest import STAFF_PASSWORD

    port, dead_redis = free_port(), f"redis://127.0.0.1:{free_port()}/0"
    with (tmp_path / "web.log").open("wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "flowhq.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT, env=child_env(REDIS_URL=dead_redis), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}/api/admin/tenants/{tenant.pk}"
        auth = ("staff", STAFF_PASSWORD)
        wait_for(lambda: requests.get(f"{base}/worker", auth=auth, timeout=2).ok, 30, what="gunicorn")
        began = time.monotonic()
        sent = requests.post(f"{base}/messages", json={"to": "4917000000001", "body": "hi"}, auth=auth, timeout=30)
        assert sent.status_code == 202
        assert sent.json()["status"] == "queued"
        assert time.monotonic() - began < 3, "a dead broker must not hold the request up"
        assert requests.post(f"{base}/worker/start", auth=auth, timeout=30).status_code == 202
        assert requests.post(f"{base}/worker/stop", auth=auth, timeout=30).status_code == 202
    finally:
        web.terminate()
        web.wait(20)
    assert "could not reach the tenant's worker" in (tmp_path / "web.log").read_text()
