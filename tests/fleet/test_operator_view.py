"""What an operator sees of a running fleet: the `celery` CLI and Flower, against real processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.harness import ROOT, Fleet, child_env, free_port, wait_for
from tests.waits import wait_host, wait_running
from workers import lifecycle

pytestmark = pytest.mark.integration


def celery_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "celery", "-A", "flowhq", *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_celery_cli_and_flower_list_the_agent_and_the_tenant_node_with_its_queue(fleet: Fleet, tenant):
    host = fleet.new_host()
    fleet.agent(host)
    wait_host(host)
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_running(tenant.pk)
    agent_node, tenant_node = f"fleet@{host}", f"tenant-{tenant.pk}@{host}"

    status = celery_cli("status", "--timeout", "5")
    assert f"{agent_node}: OK" in status, status
    assert f"{tenant_node}: OK" in status, status
    queues = celery_cli("inspect", "active_queues", "--timeout", "5", "-d", tenant_node)
    assert f"'name': 'tenant.{tenant.pk}'" in queues, queues
    assert "'name': 'fleet." not in queues, queues

    port = free_port()
    fleet.flower(port)
    base = f"http://127.0.0.1:{port}"

    def online() -> dict[str, bool]:
        rows = requests.get(f"{base}/workers", params={"json": 1, "refresh": 1}, timeout=5).json()["data"]
        seen = {row["hostname"]: row["status"] for row in rows}
        return seen if seen.get(agent_node) and seen.get(tenant_node) else {}

    wait_for(online, 30, interval=0.5, what="Flower lists both nodes online")
    page = requests.get(f"{base}/worker/{tenant_node}", timeout=10)
    assert page.status_code == 200
    assert f"<td>tenant.{tenant.pk}</td>" in page.text
