"""The fleet with real processes: agents, tenant workers, beat, Redis and PostgreSQL."""

from __future__ import annotations

import base64
import os
import re
import signal
import threading
import time
from datetime import datetime

import psutil
import pytest
import requests
from django.contrib.auth import get_user_model

from flowhq.celery import app
from tenants import services
from tenants.models import WhatsAppSession
from tenants.states import SessionState
from tests.harness import Fleet, ours, tenant_processes, wait_for
from tests.waits import wait_host, wait_running, wait_status, worker
from workers import lifecycle
from workers.models import WorkerTransition
from workers.states import DesiredState, WorkerStatus

pytestmark = pytest.mark.integration
W = WorkerStatus


def pids(tenant_id: int) -> list[int]:
    return sorted(p.pid for p in tenant_processes(tenant_id))


def tree(tenant_id: int) -> list[int]:
    """Every live process of the tenant: the worker and whatever it started."""
    return [p.pid for p in ours(tenant_id)]


def reasons(tenant_id: int) -> list[str]:
    return list(WorkerTransition.objects.filter(worker__tenant_id=tenant_id).order_by("id").values_list("reason", flat=True))


def test_a_started_tenant_gets_a_node_that_answers_and_consumes_only_its_queue(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    lifecycle.worker_start(tenant_id=tenant.pk)
    running = wait_running(tenant.pk)
    node = f"tenant-{tenant.pk}@{host}"
    assert running.node == node
    assert pids(tenant.pk) == [running.pid]
    assert app.control.ping(destination=[node], timeout=3) == [{node: {"ok": "pong"}}]
    queues = app.control.inspect(destination=[node], timeout=3).active_queues()
    assert [q["name"] for q in queues[node]] == [f"tenant.{tenant.pk}"]

    lifecycle.worker_stop(tenant_id=tenant.pk)
    stopped = wait_status(tenant.pk, W.STOPPED)
    assert stopped.pid is None
    assert tree(tenant.pk) == []
    assert app.control.ping(destination=[node], timeout=1) == []
    idle = psutil.Process(agent.popen.pid).cpu_percent(interval=2)
    assert idle < 30, f"an idle agent must not spin ({idle}% CPU)"


def test_a_killed_worker_is_restarted_by_its_agent(fleet: Fleet, tenant):
    fleet.agent()
    lifecycle.worker_start(tenant_id=tenant.pk)
    first = wait_running(tenant.pk)
    os.kill(first.pid, signal.SIGKILL)
    second = wait_running(tenant.pk, not_pid=first.pid)
    assert second.restart_count == 1
    assert pids(tenant.pk) == [second.pid]
    assert any("was killed by SIGKILL" in r for r in reasons(tenant.pk))


def test_a_worker_killed_after_a_stable_run_is_respawned_at_once(fleet: Fleet, tenant):
    fleet.agent(WORKER_STABLE_AFTER_MS="1000", WORKER_RESTART_BASE_DELAY_MS="5000")
    lifecycle.worker_start(tenant_id=tenant.pk)
    first = wait_running(tenant.pk)
    time.sleep(1.5)  # longer than WORKER_STABLE_AFTER_MS
    os.kill(first.pid, signal.SIGKILL)
    wait_running(tenant.pk, not_pid=first.pid)
    error = WorkerTransition.objects.filter(worker__tenant=tenant, to_status=W.ERROR).get()
    start = WorkerTransition.objects.filter(worker__tenant=tenant, from_status=W.ERROR, to_status=W.STARTING).get()
    assert "restarting now, after a stable run (crash 1 in a row)" in error.reason
    assert (start.created_at - error.created_at).total_seconds() < 1  # not the 5 s back-off


def test_repeated_crashes_back_off_and_end_in_error_with_the_reason(fleet: Fleet, tenant):
    fleet.agent(WORKER_MAX_CONSECUTIVE_CRASHES="3", WORKER_RESTART_BASE_DELAY_MS="1000")
    lifecycle.worker_start(tenant_id=tenant.pk)
    pid = None
    for _ in range(3):
        running = wait_running(tenant.pk, not_pid=pid)
        pid = running.pid
        os.kill(pid, signal.SIGKILL)
    failed = wait_status(tenant.pk, W.ERROR)
    assert "3 crashes in a row, giving up" in failed.last_error
    assert failed.tenant.status == "ERROR"
    time.sleep(2)
    assert pids(tenant.pk) == []
    errors = WorkerTransition.objects.filter(worker__tenant=tenant, to_status=W.ERROR).order_by("id")
    starts = WorkerTransition.objects.filter(worker__tenant=tenant, from_status=W.ERROR, to_status=W.STARTING).order_by("id")
    gaps = [(s.created_at - e.created_at).total_seconds() for e, s in zip(errors, starts, strict=False)]
    # Delays of 1 s then 1.5 s (×1.5 per crash). The agent's timer starts when it sees the exit,
    # a moment before it records ERROR, so the recorded gap may be a few milliseconds short.
    assert len(gaps) == 2
    assert gaps[0] >= 0.95
    assert gaps[1] >= 1.45
    assert gaps[1] > gaps[0]


def test_a_hung_worker_is_caught_by_the_sweep_and_recovered(fleet: Fleet, tenant):
    fleet.agent()
    fleet.beat()
    lifecycle.worker_start(tenant_id=tenant.pk)
    hung = wait_running(tenant.pk)
    os.kill(hung.pid, signal.SIGSTOP)
    recovered = wait_running(tenant.pk, not_pid=hung.pid, timeout=60)
    assert any(r.startswith("no heartbeat for") for r in reasons(tenant.pk))
    wait_for(lambda: pids(tenant.pk) == [recovered.pid], 20, what="the hung process to be gone")


def test_a_restarted_agent_adopts_its_workers_without_duplicates(fleet: Fleet, make_tenant):
    host = fleet.new_host()
    first = fleet.agent(host)
    tenants = [make_tenant(f"T{n}") for n in range(3)]
    for t in tenants:
        lifecycle.worker_start(tenant_id=t.pk)
    before = {t.pk: wait_running(t.pk).pid for t in tenants}
    fleet.stop(first, signal.SIGKILL)
    assert {t.pk: pids(t.pk) for t in tenants} == {k: [v] for k, v in before.items()}
    second = fleet.agent(host)
    wait_for(lambda: second.output().count("adopted a running worker") == 3, 30, what="adoption")
    time.sleep(2)
    assert {t.pk: pids(t.pk) for t in tenants} == {k: [v] for k, v in before.items()}
    assert all(worker(t.pk).status == W.RUNNING for t in tenants)


def _log_time(text: str, message: str, tenant_id: int) -> datetime | None:
    for line in text.splitlines():
        if f"tenant={tenant_id} " in line and f'msg="{message}"' in line:
            return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
    return None


def test_killing_one_of_two_agents_moves_its_tenants_without_two_live_workers(fleet: Fleet, make_tenant):
    host_a, host_b = fleet.new_host(), fleet.new_host()
    agent_a = fleet.agent(host_a, capacity=5)
    wait_host(host_a)
    tenants = [make_tenant(f"T{n}") for n in range(2)]
    for t in tenants:
        lifecycle.worker_start(tenant_id=t.pk)
    old = {t.pk: wait_running(t.pk) for t in tenants}
    assert {w.host for w in old.values()} == {host_a}
    agent_b = fleet.agent(host_b, capacity=5)
    wait_host(host_b)
    fleet.beat()
    fleet.stop(agent_a, signal.SIGKILL)

    moved = {t.pk: wait_running(t.pk, not_pid=old[t.pk].pid, timeout=60) for t in tenants}
    assert {w.host for w in moved.values()} == {host_b}
    for t in tenants:
        wait_for(lambda t=t: pids(t.pk) == [moved[t.pk].pid], 20, what="the old worker to stop itself")
        # The old worker let go of the tenant before the new one took it.
        released = _log_time(agent_a.output(), "runtime stopped; lease released", t.pk)
        acquired = _log_time(agent_b.output(), "lease acquired", t.pk)
        assert released is not None
        assert acquired is not None
        assert released < acquired


def test_twenty_concurrent_starts_over_http_leave_one_worker(fleet: Fleet, tenant, live_server):
    fleet.agent()
    get_user_model().objects.create_user(username="ops", password="ops-pass-123", is_staff=True)
    auth = "Basic " + base64.b64encode(b"ops:ops-pass-123").decode()
    url = f"{live_server.url}/api/admin/tenants/{tenant.pk}/worker/start"
    barrier, codes = threading.Barrier(20), []

    def start() -> None:
        barrier.wait()
        codes.append(requests.post(url, headers={"Authorization": auth}, timeout=30).status_code)

    threads = [threading.Thread(target=start) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] * 19 + [202], "one start; the others are told it is already starting"
    running = wait_running(tenant.pk)
    time.sleep(2)
    assert pids(tenant.pk) == [running.pid]
    assert WorkerTransition.objects.filter(worker__tenant=tenant, from_status=W.STOPPED, to_status=W.STARTING).count() == 1


def test_a_stop_during_start_ends_stopped_and_stays_stopped_across_agent_restarts(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_for(lambda: pids(tenant.pk), 30, what="a process to be spawned")
    lifecycle.worker_stop(tenant_id=tenant.pk)
    wait_status(tenant.pk, W.STOPPED)
    wait_for(lambda: tree(tenant.pk) == [], 20, what="no process left")
    fleet.stop(agent)
    fleet.agent(host)
    wait_host(host)
    time.sleep(3)
    assert tree(tenant.pk) == []
    assert (worker(tenant.pk).status, worker(tenant.pk).desired_state) == (W.STOPPED, DesiredState.STOPPED)


def test_a_stopping_agent_takes_its_workers_down_and_brings_them_back(fleet: Fleet, make_tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    tenants = [make_tenant(f"T{n}") for n in range(2)]
    for t in tenants:
        lifecycle.worker_start(tenant_id=t.pk)
    for t in tenants:
        wait_running(t.pk)
    fleet.stop(agent)
    assert all(tree(t.pk) == [] for t in tenants)
    assert all((worker(t.pk).status, worker(t.pk).desired_state) == (W.STOPPED, DesiredState.RUNNING) for t in tenants)
    fleet.agent(host)
    for t in tenants:
        wait_running(t.pk)


def test_a_worker_over_its_memory_limit_is_restarted(fleet: Fleet, tenant):
    fleet.agent(WORKER_MAX_MEMORY_MB="5", WORKER_MEMORY_CHECK_MS="500")
    lifecycle.worker_start(tenant_id=tenant.pk)
    first = wait_for(lambda: worker(tenant.pk).pid, 30, what="a process")
    wait_for(lambda: any(re.match(r"private memory \d+ MB over WORKER_MAX_MEMORY_MB=5", r) for r in reasons(tenant.pk)), 30,
             what="a memory restart")
    wait_for(lambda: worker(tenant.pk).pid not in (None, first), 30, what="a new process")
    assert worker(tenant.pk).restart_count >= 1


def test_stalls_after_healthy_runs_never_add_up_to_giving_up(fleet: Fleet, tenant):
    """Each stall after a stable run starts the count again, as a crash does: five of them, with
    a cap of three, and the tenant still runs."""
    fleet.agent(WORKER_STABLE_AFTER_MS="2000", WORKER_MAX_CONSECUTIVE_CRASHES="3")
    fleet.beat()
    lifecycle.worker_start(tenant_id=tenant.pk)
    current = wait_running(tenant.pk)
    for _ in range(5):
        time.sleep(2.5)  # longer than WORKER_STABLE_AFTER_MS of heartbeats
        os.kill(current.pid, signal.SIGSTOP)
        current = wait_running(tenant.pk, not_pid=current.pid, timeout=60)
        assert current.consecutive_failures <= 1
    assert sum(r.startswith("no heartbeat for") for r in reasons(tenant.pk)) == 5
    wait_for(lambda: pids(tenant.pk) == [current.pid], 20, what="the stalled processes to be gone")
    current.tenant.refresh_from_db()
    assert current.tenant.status == "RUNNING"


def test_a_worker_that_gives_up_shows_why_and_no_pid(fleet: Fleet, tenant):
    fleet.agent(WORKER_MAX_CONSECUTIVE_CRASHES="1")
    fleet.beat()
    lifecycle.worker_start(tenant_id=tenant.pk)
    hung = wait_running(tenant.pk)
    os.kill(hung.pid, signal.SIGSTOP)
    failed = wait_for(lambda: worker(tenant.pk).status == W.ERROR and worker(tenant.pk).pid is None
                      and worker(tenant.pk), 60, what="ERROR without a pid")
    assert "stalled 1 times in a row, giving up (WORKER_MAX_CONSECUTIVE_CRASHES=1)" in failed.last_error
    time.sleep(2)
    assert pids(tenant.pk) == []
    assert worker(tenant.pk).pid is None


def test_a_killed_worker_leaves_its_session_disconnected_not_connected(fleet: Fleet, tenant):
    """SIGKILL gives the bot no chance to say it is gone; its agent says it."""
    fleet.agent()
    lifecycle.worker_start(tenant_id=tenant.pk)
    running = wait_running(tenant.pk)
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000009")
    os.kill(running.pid, signal.SIGKILL)
    gone = wait_for(lambda: WhatsAppSession.objects.get(tenant=tenant).state == SessionState.DISCONNECTED
                    and WhatsAppSession.objects.get(tenant=tenant), 30, what="the session DISCONNECTED")
    assert gone.last_error == "worker process was killed by SIGKILL"
