"""The fleet console's reads (console.selectors) and its page and actions, without a browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from console import selectors
from tenants import services
from tenants.models import MessageLog, WhatsAppSession
from tenants.states import SessionState
from tests.fleet.factories import dead_host, live_host
from workers.models import WorkerProcess
from workers.states import DesiredState, WorkerStatus

pytestmark = pytest.mark.django_db


def tenant_with(name: str, *, session: str | None = None, **worker: object):
    tenant = services.tenant_create(name=name)
    if worker:
        WorkerProcess.objects.filter(tenant=tenant).update(**worker)
    if session:
        WhatsAppSession.objects.filter(tenant=tenant).update(state=session, last_error="")
    return tenant


def test_problems_come_most_urgent_first_each_with_what_helps():
    now = timezone.now()
    live_host("h1")
    qr = tenant_with("qr", session=SessionState.QR_TIMEOUT, status=WorkerStatus.RUNNING, host="h1",
                     desired_state=DesiredState.RUNNING)
    logged_out = tenant_with("out", session=SessionState.LOGGED_OUT, status=WorkerStatus.STOPPED)
    homeless = tenant_with("homeless", status=WorkerStatus.STARTING, host="", desired_state=DesiredState.RUNNING,
                           stale_after=now + timedelta(minutes=1))
    stale = tenant_with("stale", status=WorkerStatus.RUNNING, host="h1", desired_state=DesiredState.RUNNING,
                        stale_after=now - timedelta(seconds=5), heartbeat_at=now - timedelta(seconds=30))
    error = tenant_with("error", status=WorkerStatus.ERROR, host="h1", desired_state=DesiredState.RUNNING,
                        last_error="Chromium would not start")
    looping = tenant_with("looping", status=WorkerStatus.STARTING, host="h1", desired_state=DesiredState.RUNNING,
                          consecutive_failures=3, stale_after=now + timedelta(minutes=1), last_error="exit 1")
    tenant_with("fine", session=SessionState.CONNECTED, status=WorkerStatus.RUNNING, host="h1",
                desired_state=DesiredState.RUNNING, stale_after=now + timedelta(minutes=1))

    found = [(a.tenant_id, a.problem, a.action) for a in selectors.tenants_needing_attention(now=now)]
    assert found == [
        (looping.pk, "crash-looping", "force-restart"),
        (error.pk, "error", "restart"),
        (stale.pk, "stale", "force-restart"),
        (homeless.pk, "no-host", None),
        (logged_out.pk, "logged-out", "new-qr"),
        (qr.pk, "qr-timed-out", "new-qr"),
    ]


def test_a_worker_that_gave_up_after_crashing_is_still_crash_looping():
    gave_up = tenant_with("gave up", status=WorkerStatus.ERROR, host="h1", desired_state=DesiredState.RUNNING,
                          consecutive_failures=5, last_error="5 restarts in a row, giving up")
    (item,) = selectors.tenants_needing_attention()
    assert (item.tenant_id, item.problem, item.action) == (gave_up.pk, "crash-looping", "force-restart")


def test_hosts_show_capacity_load_and_liveness():
    live_host("h1", capacity=4)
    dead_host("h2", capacity=10)
    tenant_with("a", status=WorkerStatus.RUNNING, host="h1", desired_state=DesiredState.RUNNING)
    tenant_with("b", status=WorkerStatus.STARTING, host="h1", desired_state=DesiredState.RUNNING)
    hosts = {h.name: h for h in selectors.host_list()}
    assert (hosts["h1"].placed, hosts["h1"].running, hosts["h1"].live, hosts["h1"].load_percent) == (2, 1, True, 50)
    assert (hosts["h2"].placed, hosts["h2"].live) == (0, False)
    assert selectors.workers_by_status() == {"STOPPED": 0, "STARTING": 1, "RUNNING": 1, "STOPPING": 0, "ERROR": 0}


def test_messages_per_minute_over_the_last_minutes(settings):
    tenant = services.tenant_create(name="busy")
    now = timezone.now().replace(second=30, microsecond=0)
    for i, (minutes_ago, direction) in enumerate([(0, "in"), (1, "in"), (1, "out"), (1, "in"), (12, "in")]):
        entry = MessageLog.objects.create(tenant=tenant, message_id=f"m{i}", chat="1@c.us", direction=direction,
                                          status="replied")
        MessageLog.objects.filter(pk=entry.pk).update(created_at=now - timedelta(minutes=minutes_ago))
    rate = selectors.message_rate(minutes=10, now=now)
    assert len(rate.minutes) == 10
    assert (rate.minutes[-1].incoming, rate.minutes[-1].outgoing) == (1, 0)
    assert (rate.minutes[-2].incoming, rate.minutes[-2].outgoing) == (2, 1)
    assert rate.last_minute == 3
    assert rate.at_least is False
    settings.CONSOLE_RATE_MAX_ROWS = 2  # reads only the two newest rows: the count is a lower bound
    assert selectors.message_rate(minutes=10, now=now).at_least is True


def test_the_console_is_for_staff_only(db):
    assert Client().get("/console/")["Location"].startswith("/admin/login/?next=/console/")
    member = get_user_model().objects.create_user(username="m@x.example", email="m@x.example", password="x")
    client = Client()
    client.force_login(member)
    assert client.get("/console/").status_code == 403
    assert client.post("/console/tenants/1/restart/").status_code == 403


def test_an_action_calls_the_lifecycle_service_and_says_what_happened(staff_user):
    tenant = tenant_with("stopped one", status=WorkerStatus.ERROR, desired_state=DesiredState.STOPPED)
    client = Client()
    client.force_login(staff_user)
    page = client.get("/console/")
    assert page.status_code == 200
    refused = client.post(f"/console/tenants/{tenant.pk}/restart/", follow=True).content.decode()
    assert "Could not restart" in refused
    assert "start it instead" in refused
    started = client.post(f"/console/tenants/{tenant.pk}/start/", follow=True).content.decode()
    assert "Start requested for stopped one" in started
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == DesiredState.RUNNING
    assert client.post(f"/console/tenants/{tenant.pk}/explode/").status_code == 404
    assert client.post("/console/tenants/99999999/start/").status_code == 404
    assert client.get(f"/console/tenants/{tenant.pk}/start/").status_code == 405
