"""The WhatsApp bot end to end: real worker processes, real Chromium via pyppeteer, the simulator."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.botkit import (
    Sim,
    chromium_of,
    decode_qr,
    link,
    session,
    start_agent,
    wait_session,
    worker,
)
from tests.harness import wait_for
from workers import lifecycle
from workers.models import ProfileBackup

pytestmark = pytest.mark.integration
PHONE = "4915100000001"
CUSTOMER = "4917000000001"


def test_onboarding_shows_a_scannable_qr_and_a_scan_connects(bot_fleet, sim: Sim, tenant, api):
    start_agent(bot_fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_session(tenant.pk, "QR_READY")
    body = api.get(f"/api/admin/tenants/{tenant.pk}/qr").json()
    assert body["state"] == "QR_READY"
    payload = decode_qr(body["qr"])
    shown = [d["qr"] for d in sim.devices() if d["qr"]]
    assert payload in shown or decode_qr(session(tenant.pk).qr) in shown  # it may have rotated meanwhile
    sim.scan(decode_qr(session(tenant.pk).qr), PHONE)
    connected = wait_session(tenant.pk, "CONNECTED")
    assert connected.phone == PHONE
    assert connected.qr == ""
    tenant.refresh_from_db()
    assert tenant.status == "RUNNING"
    assert worker(tenant.pk).status == "RUNNING"


def test_the_link_survives_restart_force_restart_and_kill_9(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    for action in ("restart", "force-restart", "kill -9"):
        before = worker(tenant.pk).pid
        if action == "restart":
            lifecycle.worker_restart(tenant_id=tenant.pk)
        elif action == "force-restart":
            lifecycle.worker_force_restart(tenant_id=tenant.pk)
        else:
            os.kill(before, signal.SIGKILL)
        wait_for(lambda before=before: worker(tenant.pk).pid not in (None, before), 60, what=f"{action}: new process")
        wait_for(lambda: session(tenant.pk).state == "CONNECTED" and worker(tenant.pk).status == "RUNNING", 60,
                 what=f"{action}: connected again")
        assert session(tenant.pk).qr_count == 1, f"{action} needed a new QR"
    assert [d["phone"] for d in sim.devices()] == [PHONE]


def test_logout_on_the_phone_needs_a_new_qr_on_the_next_start(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    wait_for(lambda: ProfileBackup.objects.filter(tenant=tenant).exists(), 20, what="the profile backed up")
    sim.call("POST", f"/_sim/phones/{PHONE}/logout", expect=200)
    logged_out = wait_session(tenant.pk, "LOGGED_OUT")
    assert "unlinked" in logged_out.last_error
    assert not ProfileBackup.objects.filter(tenant=tenant).exists(), "a dead link is not kept for another host"
    time.sleep(1)
    assert session(tenant.pk).state == "LOGGED_OUT", "a logged-out session is not retried"
    lifecycle.worker_restart(tenant_id=tenant.pk)
    fresh = wait_session(tenant.pk, "QR_READY")
    assert decode_qr(fresh.qr).startswith("2@")


def test_a_network_drop_is_reconnected_with_backoff(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    sim.call("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 3000}, expect=200)
    dropped = wait_session(tenant.pk, "DISCONNECTED", timeout=20)
    assert "TIMEOUT" in dropped.last_error
    wait_session(tenant.pk, "CONNECTED", timeout=60)
    assert worker(tenant.pk).status == "RUNNING"


def test_a_silently_dead_socket_is_caught_by_the_heartbeat(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    pid = worker(tenant.pk).pid
    sim.call("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 3000, "silent": True}, expect=200)
    wait_session(tenant.pk, "DISCONNECTED", timeout=20)
    wait_session(tenant.pk, "CONNECTED", timeout=60)
    assert worker(tenant.pk).pid == pid, "the bot reconnected; the process was not replaced"


def test_a_text_sent_through_the_api_reaches_the_outbox(bot_fleet, sim: Sim, tenant, api):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    response = api.post(f"/api/admin/tenants/{tenant.pk}/messages", {"to": CUSTOMER, "body": "Your order shipped"},
                        format="json")
    assert response.status_code == 202
    entry = response.json()
    assert (entry["direction"], entry["status"]) == ("out", "queued")
    sent = wait_for(lambda: sim.outbox(PHONE), 30, what="the outbox")
    assert [(m["to"], m["body"], m["id"]) for m in sent] == [(CUSTOMER, "Your order shipped", entry["message_id"])]
    wait_for(lambda: api.get(f"/api/admin/tenants/{tenant.pk}/logs").json()["results"][0]["status"] == "sent", 10)


def test_stop_closes_chromium_and_leaves_no_process(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    assert len(chromium_of(tenant.pk)) > 0
    lifecycle.worker_stop(tenant_id=tenant.pk)
    wait_for(lambda: worker(tenant.pk).status == "STOPPED", 30, what="stopped")
    assert chromium_of(tenant.pk) == []
    assert session(tenant.pk).state == "DISCONNECTED"
    assert session(tenant.pk).last_error == "worker stopped"


def test_a_chromium_crash_restarts_the_browser_not_the_worker(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    pid = worker(tenant.pk).pid
    browsers = [p for p in chromium_of(tenant.pk) if os.getppid() != p]
    main = min(browsers)  # the browser process is the first one its worker started
    os.kill(main, signal.SIGKILL)
    wait_session(tenant.pk, "DISCONNECTED", timeout=20)
    wait_session(tenant.pk, "CONNECTED", timeout=60)
    assert worker(tenant.pk).pid == pid
    assert main not in chromium_of(tenant.pk)


def test_unscanned_qr_codes_stop_after_the_budget_and_say_why(fleet, sim: Sim, tenant, tmp_path):
    fleet.env.update(BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim.url, SESSIONS_PATH=str(tmp_path / "s"),
                     QR_MAX_UNSCANNED="2")
    start_agent(fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    timed_out = wait_session(tenant.pk, "QR_TIMEOUT", timeout=30)
    assert "2 QR codes were shown and none was scanned" in timed_out.last_error
    assert timed_out.qr == ""
    tenant.refresh_from_db()
    assert tenant.status == "ERROR"


def test_a_missing_chromium_ends_in_error_naming_the_variable(fleet, sim: Sim, tenant, tmp_path):
    fleet.env.update(BOT_RUNTIME="whatsapp", WHATSAPP_WEB_URL=sim.url, SESSIONS_PATH=str(tmp_path / "s"),
                     PUPPETEER_EXECUTABLE_PATH="/nonexistent/chromium", WORKER_MAX_CONSECUTIVE_CRASHES="2")
    start_agent(fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)
    wait_for(lambda: "giving up" in worker(tenant.pk).last_error, 60, what="giving up")
    reasons = list(worker(tenant.pk).transitions.values_list("reason", flat=True))
    assert any("PUPPETEER_EXECUTABLE_PATH='/nonexistent/chromium'" in r for r in reasons)
