"""When WhatsApp Web is not the page the bot speaks: a missing module is named on the session (in
the admin and the API) within the timeout, and nothing waits forever. The simulator leaves a module
out with `--without-module`, as a WhatsApp Web release that renamed it would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenants.models import Tenant
from tests.botkit import SIM_TIMINGS, Sim, decode_qr, point_at, session, start_agent, wait_session
from tests.harness import SimulatorProcess, wait_for
from tests.waits import worker
from workers import lifecycle

pytestmark = pytest.mark.integration
PHONE = "4915100000004"
VERSION = "2.3000.1099999999"


@pytest.fixture
def page(fleet, tmp_path, request) -> Iterator[Sim]:
    """A simulator started with the test's `page_args`, and a fleet pointed at it."""
    args = request.node.get_closest_marker("page_args").args
    process = SimulatorProcess(tmp_path / "simulator.log", **SIM_TIMINGS,
                               extra_args=("--wa-version", VERSION, *args)).start()
    point_at(fleet, process.url, tmp_path, WHATSAPP_WEB_LOAD_TIMEOUT_MS="3000", RECONNECT_MAX_ATTEMPTS="2")
    try:
        yield Sim(process)
    finally:
        process.stop()


def tenant_error(tenant_id: int, text: str, timeout: float = 40) -> None:
    wait_for(lambda: (t := Tenant.objects.get(pk=tenant_id)).status == "ERROR" and text in t.status_reason,
             timeout, what=f"the tenant in ERROR saying {text!r}")


@pytest.mark.page_args("--without-module", "WAWebUserPrefsInfoStore")
def test_a_page_without_a_module_of_the_qr_says_which_at_once(page, fleet, tenant, api):
    start_agent(fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    expected = f"WhatsApp Web {VERSION}: module WAWebUserPrefsInfoStore not found"
    wait_for(lambda: expected in session(tenant.pk).last_error, 30, what="the missing module on the session")
    tenant_error(tenant.pk, expected)
    body = api.get(f"/api/admin/tenants/{tenant.pk}").json()
    assert expected in body["session"]["last_error"]
    assert body["session"]["wa_version"] == VERSION
    assert body["session"]["state"] == "NEW", "no QR was offered"
    assert worker(tenant.pk).status == "RUNNING", "the worker is alive and idle, not crash-looping"


@pytest.mark.page_args("--without-module", "WAWebMsgKey")
def test_a_page_without_the_send_module_links_then_says_which_is_missing(page, fleet, tenant, api, admin_client):
    start_agent(fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    page.scan(decode_qr(wait_session(tenant.pk, "QR_READY").qr), PHONE)
    expected = f"WhatsApp Web {VERSION}: module WAWebMsgKey not found"
    tenant_error(tenant.pk, expected)
    body = api.get(f"/api/admin/tenants/{tenant.pk}").json()
    assert expected in body["session"]["last_error"]
    assert body["session"]["wa_version"] == VERSION
    admin_page = admin_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert admin_page.status_code == 200
    assert expected in admin_page.content.decode()


@pytest.mark.page_args("--wa-version", "")
def test_a_page_that_never_loads_is_retried_then_given_up_with_the_reason(page, fleet, tenant):
    start_agent(fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    tenant_error(tenant.pk, "window.Debug.VERSION never appeared", timeout=60)
    assert "did not load within 3 s" in session(tenant.pk).last_error
