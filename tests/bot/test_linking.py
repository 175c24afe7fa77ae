"""Linking, end to end (real fleet agent, worker, Chromium and simulator): the status reason says
what the tenant waits for, a logout from FlowHQ unlinks the device on the phone, and a phone
keeps several linked devices."""

from __future__ import annotations

import pytest

from tests.botkit import Sim, decode_qr, link, session, start_agent, wait_session
from tests.harness import wait_for
from workers import lifecycle
from workers.models import ProfileBackup

pytestmark = pytest.mark.integration
PHONE = "4915100000011"


def test_while_a_qr_waits_the_reason_says_so(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_session(tenant.pk, "QR_READY")
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == ("STARTING", "waiting for the QR code to be scanned")
    sim.scan(decode_qr(session(tenant.pk).qr), PHONE)
    wait_session(tenant.pk, "CONNECTED")
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == ("RUNNING", "connected to WhatsApp")


def test_logout_through_the_api_unlinks_the_device_and_the_next_link_needs_a_new_qr(bot_fleet, sim: Sim, tenant,
                                                                                   api):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    assert api.get(f"/api/admin/tenants/{tenant.pk}").json()["phone"] == PHONE
    wait_for(lambda: ProfileBackup.objects.filter(tenant=tenant).exists(), 20, what="the profile backed up")
    assert [d["phone"] for d in sim.devices()] == [PHONE]
    response = api.post(f"/api/admin/tenants/{tenant.pk}/session/logout")
    assert response.status_code == 202, response.content
    assert response.json()["message"] == "logout requested"
    wait_for(lambda: all(d["phone"] is None for d in sim.devices()), 30, what="the phone's device list without it")
    fresh = wait_session(tenant.pk, "QR_READY", timeout=30)
    assert decode_qr(fresh.qr).startswith("2@")
    body = api.get(f"/api/admin/tenants/{tenant.pk}").json()
    assert (body["session_state"], body["phone"], body["status"]) == ("QR_READY", "", "STARTING")
    assert not ProfileBackup.objects.filter(tenant=tenant).exists(), "the dead link is not restored anywhere"
    refused = api.post(f"/api/admin/tenants/{tenant.pk}/session/logout")
    assert refused.status_code == 409
    sim.scan(decode_qr(session(tenant.pk).qr), PHONE)
    assert wait_session(tenant.pk, "CONNECTED").phone == PHONE


def test_two_tenants_linked_to_one_phone_both_stay_connected_and_both_answer(bot_fleet, sim: Sim, make_tenant):
    from tenants import services

    acme, globex = make_tenant("Acme Bakery"), make_tenant("Globex Shop")
    for tenant in (acme, globex):
        services.template_create(tenant=tenant, match="default", body=f"Hi from {tenant.name}")
    start_agent(bot_fleet)
    link(acme.pk, sim, PHONE)
    link(globex.pk, sim, PHONE)
    assert sorted(d["name"] for d in sim.devices() if d["phone"] == PHONE) == [
        "FlowHQ (Acme Bakery)", "FlowHQ (Globex Shop)"], "the phone names each device by its tenant"
    sim.message(PHONE, "3EB0MULTI01", "4917000000555", "hello")
    wait_for(lambda: {m["body"] for m in sim.outbox(PHONE)} == {"Hi from Acme Bakery", "Hi from Globex Shop"}, 60,
             what="both bots answered")
    assert (session(acme.pk).state, session(globex.pk).state) == ("CONNECTED", "CONNECTED")
    (phone,) = [p for p in sim.call("GET", "/_sim/phones") if p["phone"] == PHONE]
    assert len(phone["devices"]) == 2
    assert all(d["online"] for d in phone["devices"])
    replies = sim.call("GET", f"/_sim/phones/{PHONE}/conversation")
    assert {(r["device_name"], r["wrote"]["body"]) for r in replies} == {
        ("FlowHQ (Acme Bakery)", "hello"), ("FlowHQ (Globex Shop)", "hello")}


def test_with_no_qr_limit_the_demo_keeps_offering_codes_and_a_new_qr_is_one_call(fleet, tmp_path, tenant, api):
    from tests.botkit import SIM_TIMINGS, point_at
    from tests.harness import SimulatorProcess

    # Two codes a batch, then the page idles: the bot asks for more (Cmd.refreshQR) with no end.
    process = SimulatorProcess(tmp_path / "sim.log", **{**SIM_TIMINGS, "qr_rotate_ms": 700},
                               extra_args=("--qr-refs-per-batch", "2")).start()
    try:
        point_at(fleet, process.url, tmp_path, QR_MAX_UNSCANNED="0")
        start_agent(fleet)
        lifecycle.worker_start(tenant_id=tenant.pk)
        wait_for(lambda: session(tenant.pk).qr_count >= 6, 60, what="six codes, past two idle batches")
        assert session(tenant.pk).state == "QR_READY"
        tenant.refresh_from_db()
        assert (tenant.status, tenant.status_reason) == ("STARTING", "waiting for the QR code to be scanned")
        shown = api.post(f"/api/admin/tenants/{tenant.pk}/session/new-qr")
        assert (shown.status_code, shown.json()["message"]) == (200, "a QR code is already shown")
    finally:
        process.stop()
