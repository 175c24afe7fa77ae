"""The fleet console in a real browser: an operator signs in to the admin, follows the console link
(first on the admin index), finds a really crash-looping tenant at the top of "needing attention"
with its action, and clicks it; below it, the other kinds of trouble, each with what helps."""

from __future__ import annotations

import os
import signal

import pytest
from django.contrib.auth import get_user_model

from tenants import services
from tenants.models import WhatsAppSession
from tenants.states import SessionState, TenantStatus
from tests.harness import Fleet, wait_for
from tests.test_admin_browser import Browser, processes_of_profile
from tests.waits import wait_host, wait_running, worker
from workers import lifecycle
from workers.models import WorkerProcess
from workers.states import DesiredState, WorkerStatus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:remove loop argument:DeprecationWarning"),
]

PASSWORD = "operator-pass-123"


@pytest.fixture
def console_settings(settings) -> None:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.CONSOLE_REFRESH_SECONDS = 0


def rows(browser: Browser) -> list[tuple[str, str, str]]:
    """(tenant id, problem, action) of each row of the attention table, top first."""
    return [tuple(row) for row in browser.run(browser.page.querySelectorAllEval(
        "#attention tbody tr[data-tenant]",
        "trs => trs.map(tr => [tr.dataset.tenant, tr.dataset.problem,"
        " (tr.querySelector('button[data-action]') || {dataset: {}}).dataset.action || ''])",
    ))]


def test_an_operator_finds_a_crash_looping_tenant_at_the_top_and_force_restarts_it(
    live_server, fleet: Fleet, tmp_path, console_settings,
):
    # Trouble of other kinds first (lower ids), so the order on the page is the console's own.
    broken = services.tenant_create(name="Broken Bikes")
    # On a host of their own ("elsewhere", no agent), so this test's agent leaves them be.
    WorkerProcess.objects.filter(tenant=broken).update(status=WorkerStatus.ERROR, desired_state=DesiredState.RUNNING,
                                                       host="elsewhere", last_error="WhatsApp Web did not load")
    services.tenant_transition(tenant_id=broken.pk, to=TenantStatus.STOPPED)
    unscanned = services.tenant_create(name="Quiet Quilts")
    WorkerProcess.objects.filter(tenant=unscanned).update(status=WorkerStatus.RUNNING, host="elsewhere",
                                                          desired_state=DesiredState.RUNNING)
    WhatsAppSession.objects.filter(tenant=unscanned).update(state=SessionState.QR_TIMEOUT)
    fine = services.tenant_create(name="Fine Figs")

    # A worker that really keeps dying: its agent restarts it, the failures add up.
    looping = services.tenant_create(name="Looping Lemons")
    host = fleet.new_host()
    fleet.agent(host, WORKER_MAX_CONSECUTIVE_CRASHES="20", WORKER_RESTART_BASE_DELAY_MS="200")
    wait_host(host)
    lifecycle.worker_start(tenant_id=looping.pk)
    pid = None
    for _ in range(3):
        pid = wait_running(looping.pk, not_pid=pid).pid
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: worker(looping.pk).consecutive_failures >= 3, 20, what="three crashes in a row")

    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    profile = tmp_path / "console-browser"
    browser = Browser(profile)
    base = live_server.url
    try:
        page = browser.page
        browser.sign_in(f"{base}/admin/", "operator", PASSWORD)
        # The console is the first thing on the admin index.
        first_module = browser.run(page.querySelectorEval("#content-main .module", "m => m.id"))
        assert first_module == "fleet-console-link"
        browser.submit("#fleet-console-link caption a")
        assert page.url == f"{base}/console/"

        shown = rows(browser)
        assert shown[0] == (str(looping.pk), "crash-looping", "force-restart")
        assert (str(broken.pk), "error", "restart") in shown
        assert (str(unscanned.pk), "qr-timed-out", "new-qr") in shown
        assert str(fine.pk) not in [tenant for tenant, _, _ in shown]
        assert "crashes in a row" in browser.text(f'#attention tr[data-tenant="{looping.pk}"]')
        assert host in browser.text("#hosts")
        assert browser.text('#workers td[data-status="ERROR"]') == "1"
        assert browser.text("#fig-webhooks .n") == "0"

        epoch = worker(looping.pk).epoch
        browser.submit(f'#attention tr[data-tenant="{looping.pk}"] button[data-action="force-restart"]')
        assert page.url == f"{base}/console/"
        assert "Force-restart requested for Looping Lemons" in browser.text("ul.messagelist")
        after = worker(looping.pk)
        assert after.epoch > epoch
        assert after.consecutive_failures == 0
        # The agent carries it out: a fresh process, and the tenant leaves the top of the list.
        wait_running(looping.pk, not_pid=pid)
        browser.run(page.goto(f"{base}/console/"))
        assert str(looping.pk) not in [tenant for tenant, _, _ in rows(browser)]
    finally:
        browser.close()
    assert processes_of_profile(profile) == []
