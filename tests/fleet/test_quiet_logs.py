"""With a thousand tenants the log is mostly what each worker prints when it starts: a worker's
start is one line, the root warning is the agent's (once per host), and Flower keeps task events
only for the tasks operators follow (real agent, workers, Redis)."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from flowhq.celery import app
from tests.harness import Fleet, wait_for
from tests.waits import wait_host, wait_running
from workers import lifecycle
from workers.nudge import fleet_queue

pytestmark = pytest.mark.integration
TENANT_BANNER = re.compile(r"-------------- tenant-|\.> tenant\.")


def test_a_started_worker_logs_one_start_line_no_banner_and_no_root_warning(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    lifecycle.worker_start(tenant_id=tenant.pk)
    first = wait_running(tenant.pk)
    lifecycle.worker_restart(tenant_id=tenant.pk)
    wait_running(tenant.pk, not_pid=first.pid)
    time.sleep(1)
    output = agent.output()
    assert output.count("[queues]") == 1, "one Celery banner per host: the agent's"
    assert not TENANT_BANNER.search(output), "no banner from a tenant worker"
    starts = [line for line in output.splitlines() if 'msg="tenant worker started"' in line]
    assert len(starts) == 2, starts  # one line per start: the start and the restart
    assert all(f"node=tenant-{tenant.pk}@{host}" in line for line in starts)
    assert [line for line in output.splitlines() if " ready." in line and f"tenant-{tenant.pk}@" in line] == []
    assert [line for line in output.splitlines() if "Connected to redis" in line and " tenant=" in line] == []
    warnings = output.count("SecurityWarning")
    assert warnings == (1 if os.geteuid() == 0 else 0), "the root warning once per host: the agent's"


def test_task_events_are_kept_for_nudges_not_for_the_periodic_sweep(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host, CELERY_TASK_EVENTS="1")
    wait_host(host)
    seen: list[str] = []
    stop = threading.Event()

    def capture() -> None:
        with app.connection_for_read() as connection:
            receiver = app.events.Receiver(connection, handlers={
                "*": lambda event: seen.append(f"{event['type']} {event.get('name') or ''} {event.get('uuid', '')}")})
            while not stop.is_set():
                try:
                    receiver.capture(limit=None, timeout=0.5, wakeup=False)
                except TimeoutError:
                    continue

    def nudged() -> bool:  # until the receiver is listening, events go nowhere: nudge again
        app.send_task("fleet.nudge", args=[tenant.pk], queue=fleet_queue(host))
        return any(e.startswith("task-received fleet.nudge") for e in seen)

    listener = threading.Thread(target=capture, daemon=True)
    listener.start()
    try:
        wait_for(nudged, 30, interval=0.5, what="the nudges' task events")
        sweep = app.send_task("fleet.sweep", queue="control")
        wait_for(lambda: f"fleet.sweep[{sweep.id}] succeeded" in agent.output(), 30, what="the sweep ran")
        time.sleep(1)
    finally:
        stop.set()
        listener.join(5)
    assert not any(sweep.id in e or "fleet.sweep" in e for e in seen), seen


def test_only_the_periodic_tasks_keep_no_task_events():
    from webhooks import tasks as webhook_tasks
    from workers import tasks as worker_tasks

    tasks = [value for module in (worker_tasks, webhook_tasks) for value in vars(module).values()
             if hasattr(value, "send_events") and hasattr(value, "name")]
    assert {task.name for task in tasks if not task.send_events} == {"fleet.sweep", "webhooks.prune"}
    assert {task.name for task in tasks if task.send_events} >= {"fleet.nudge", "bot.logout", "webhooks.deliver"}
