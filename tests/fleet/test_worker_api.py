"""The worker lifecycle API: staff only, idempotent, clear 4xx errors."""

from __future__ import annotations

import pytest

from tests.fleet.factories import live_host
from workers.models import WorkerProcess

WORKER_FIELDS = {"status", "desired_state", "host", "node", "pid", "started_at", "heartbeat_at", "restart_count", "last_error"}


def test_the_worker_record_has_the_designed_shape(api, tenant):
    body = api.get(f"/api/admin/tenants/{tenant.pk}/worker").json()
    assert set(body) >= WORKER_FIELDS
    assert (body["status"], body["desired_state"], body["queue"]) == ("STOPPED", "STOPPED", f"tenant.{tenant.pk}")


def test_start_stop_and_restart_answer_202_with_the_record(api, tenant):
    live_host("a")
    started = api.post(f"/api/admin/tenants/{tenant.pk}/worker/start")
    assert started.status_code == 202
    assert (started.json()["status"], started.json()["host"]) == ("STARTING", "a")
    again = api.post(f"/api/admin/tenants/{tenant.pk}/worker/start")
    assert (again.status_code, again.json()["status"], again.json()["message"]) == (200, "STARTING", "already starting")
    restarted = api.post(f"/api/admin/tenants/{tenant.pk}/worker/force-restart")
    assert restarted.status_code == 202
    stopped = api.post(f"/api/admin/tenants/{tenant.pk}/worker/stop")
    assert (stopped.status_code, stopped.json()["desired_state"]) == (202, "STOPPED")
    reasons = list(WorkerProcess.objects.get(tenant=tenant).transitions.order_by("id").values_list("reason", flat=True))
    assert reasons == ["start requested by staff", "force-restart requested by staff"]


def test_start_on_a_running_worker_and_stop_on_a_stopped_one_answer_200_already(api, tenant):
    live_host("a")
    stopped = api.post(f"/api/admin/tenants/{tenant.pk}/worker/stop")
    assert (stopped.status_code, stopped.json()["message"], stopped.json()["status"]) == (200, "already stopped",
                                                                                          "STOPPED")
    started = api.post(f"/api/admin/tenants/{tenant.pk}/worker/start")
    assert (started.status_code, started.json()["message"]) == (202, "start requested")
    WorkerProcess.objects.filter(tenant=tenant).update(status="RUNNING")
    running = api.post(f"/api/admin/tenants/{tenant.pk}/worker/start")
    assert (running.status_code, running.json()["message"], running.json()["status"]) == (200, "already running",
                                                                                          "RUNNING")
    stopping = api.post(f"/api/admin/tenants/{tenant.pk}/worker/stop")
    assert (stopping.status_code, stopping.json()["message"]) == (202, "stop requested")
    assert api.post(f"/api/admin/tenants/{tenant.pk}/worker/stop").json()["message"] == "already stopping"
    transitions = WorkerProcess.objects.get(tenant=tenant).transitions.count()
    assert transitions == 2, "the no-ops recorded nothing"


def test_restarting_a_stopped_worker_is_a_409_naming_the_problem(api, tenant):
    response = api.post(f"/api/admin/tenants/{tenant.pk}/worker/restart")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "start it instead" in response.json()["error"]["message"]


@pytest.mark.parametrize("action", ["start", "stop", "restart", "force-restart"])
def test_an_unknown_tenant_is_a_404(api, db, action):
    response = api.post(f"/api/admin/tenants/987654/worker/{action}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_lifecycle_needs_staff(anon, tenant):
    assert anon.post(f"/api/admin/tenants/{tenant.pk}/worker/start").status_code == 401
    assert anon.get(f"/api/admin/tenants/{tenant.pk}/worker").status_code == 401


def test_get_is_not_a_command(api, tenant):
    assert api.get(f"/api/admin/tenants/{tenant.pk}/worker/start").status_code == 405
