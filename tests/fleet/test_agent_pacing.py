"""The agent's own pacing: a long pass keeps the host's heartbeat fresh, and a zygote that
cannot start is retried with growing delays instead of on every tick."""

from __future__ import annotations

import time

import psutil

from tests.fleet.factories import live_host
from workers.fleet.agent import FleetAgent
from workers.fleet.spawner import Spawner, Zygote
from workers.models import FleetHost, WorkerProcess

HOST = "pacing-host"


def test_a_long_reconcile_pass_heartbeats_between_its_steps(transactional_db, settings, make_tenant, monkeypatch):
    settings.HEARTBEAT_INTERVAL_MS = 200
    settings.FLEET_FORK_WORKERS = False
    live_host(HOST)
    tenants = [make_tenant(f"pacing {n}") for n in range(20)]
    WorkerProcess.objects.filter(tenant__in=tenants).update(host=HOST)
    agent = FleetAgent(HOST, capacity=50)
    beats = []

    def slow_step(tenant_id, row):  # what 250 spawns in one pass cost, shrunk to a second
        time.sleep(0.05)
        beats.append(FleetHost.objects.values_list("heartbeat_at", flat=True).get(name=HOST))

    monkeypatch.setattr(agent, "_reconcile_one", slow_step)
    agent._reconcile(None)
    assert len(beats) == 20
    # 1 s of steps, a heartbeat due every 0.2 s: written between them, not only after the pass.
    assert len(set(beats)) >= 4


def test_a_zygote_that_dies_before_it_is_warm_is_restarted_with_growing_delays(settings, monkeypatch):
    # Each zygote exits at once: its Django settings cannot be imported.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "flowhq.no_such_settings")
    spawner = Spawner(HOST, fork=True)
    spawner.zygote = Zygote(HOST)  # as Spawner.start does, without its wait for a warm zygote
    started = [(time.monotonic(), spawner.zygote.popen.pid)]
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            spawner.tend()
            if spawner.zygote.popen.pid != started[-1][1]:
                started.append((time.monotonic(), spawner.zygote.popen.pid))
            time.sleep(0.02)
    finally:
        spawner.stop()
    gaps = [b[0] - a[0] for a, b in zip(started, started[1:], strict=False)]
    # 1 s, then ×1.5 each time (workers/fleet/backoff.py): restarts near 1, 2.5 and 4.75 s.
    assert 2 <= len(gaps) <= 4, gaps
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[0] >= 0.9
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for _, pid in started)
