"""Tenant workers forked by the host's zygote (workers/fleet/zygote.py), with real agents,
workers, Redis and PostgreSQL: a forked worker is the agent's own child like an exec'ed one,
a dead zygote is replaced while spawns fall back to exec'ing, and no zygote outlives its agent."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from flowhq.celery import app
from tests.harness import Fleet, Proc, wait_for
from tests.waits import wait_host, wait_running, worker
from workers import lifecycle
from workers.fleet import registry

pytestmark = pytest.mark.integration


def zygotes_of(agent: Proc) -> list[psutil.Process]:
    found = []
    try:
        children = psutil.Process(agent.popen.pid).children()
    except psutil.Error:
        return []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "zygote" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def role_of(pid: int) -> str:
    """What the kernel shows as the process's environment: a forked worker shows its zygote's."""
    return psutil.Process(pid).environ().get("FLOWHQ_ROLE", "")


def test_a_forked_worker_is_the_agents_child_and_is_found_again_after_it_exits(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    wait_for(lambda: "zygote ready" in agent.output(), 30, what="the zygote warm")
    lifecycle.worker_start(tenant_id=tenant.pk)
    running = wait_running(tenant.pk)
    process = psutil.Process(running.pid)
    assert role_of(running.pid) == "zygote"  # forked, not exec'ed
    assert process.ppid() == agent.popen.pid  # re-parented to the agent, which waits for it
    assert os.getpgid(running.pid) == running.pid  # its own process group, for the group kill
    assert f"tenant-{tenant.pk}@{host}" in " ".join(process.cmdline())  # `ps` says which tenant
    assert [(pid, t) for pid, t, _, _ in registry.recorded(host)] == [(running.pid, tenant.pk)]
    replies = app.control.ping(destination=[f"tenant-{tenant.pk}@{host}"], timeout=5)
    assert replies, "the forked worker answers remote control"

    lifecycle.worker_stop(tenant_id=tenant.pk)
    wait_for(lambda: worker(tenant.pk).status == "STOPPED", 30, what="stopped")
    wait_for(lambda: not psutil.pid_exists(running.pid) or psutil.Process(running.pid).status() == "zombie",
             10, what="the worker gone")
    assert registry.recorded(host) == []


def test_a_killed_zygote_is_replaced_and_meanwhile_workers_are_execed(fleet: Fleet, make_tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    wait_for(lambda: zygotes_of(agent) and "zygote ready" in agent.output(), 30, what="the zygote warm")
    [zygote] = zygotes_of(agent)
    zygote.kill()
    first, second = make_tenant("first"), make_tenant("second")
    lifecycle.worker_start(tenant_id=first.pk)
    assert role_of(wait_running(first.pk).pid) == "tenant"  # exec'ed: the spawn did not wait
    wait_for(lambda: agent.output().count("zygote ready") == 2, 30, what="a new zygote warm")
    assert [z.pid for z in zygotes_of(agent)] != [zygote.pid]
    lifecycle.worker_start(tenant_id=second.pk)
    assert role_of(wait_running(second.pk).pid) == "zygote"  # forked again


def test_no_zygote_outlives_its_agent(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host)
    wait_host(host)
    wait_for(lambda: zygotes_of(agent), 30, what="the zygote")
    [zygote] = zygotes_of(agent)
    lifecycle.worker_start(tenant_id=tenant.pk)
    running = wait_running(tenant.pk)
    fleet.stop(agent, signal.SIGKILL)
    wait_for(lambda: not zygote.is_running() or zygote.status() == psutil.STATUS_ZOMBIE, 10,
             what="the zygote gone with its agent")
    assert psutil.pid_exists(running.pid)  # the worker stays, for the next agent to adopt
    fleet.agent(host)
    wait_for(lambda: worker(tenant.pk).pid == running.pid and worker(tenant.pk).status == "RUNNING", 30,
             what="the worker adopted")


def test_with_forking_off_workers_are_execed_and_there_is_no_zygote(fleet: Fleet, tenant):
    host = fleet.new_host()
    agent = fleet.agent(host, FLEET_FORK_WORKERS="false")
    wait_host(host)
    lifecycle.worker_start(tenant_id=tenant.pk)
    assert role_of(wait_running(tenant.pk).pid) == "tenant"
    assert zygotes_of(agent) == []
