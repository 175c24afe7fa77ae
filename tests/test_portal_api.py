"""Portal API: a signed-in user sees their own tenant, and nothing of anyone else's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from portal import events
from portal.events import tenant_events
from tenants import services
from tenants.models import MessageLog, MessageStatus, PortalMembership, SetupRequest, Tenant
from tenants.states import SessionState, SetupRequestState
from tests.harness import ROOT, child_env, free_port, wait_for

KEY = "portal-test-key-0123456789"
OWNER = "owner@acme.example"
OUTSIDER = "boss@globex.example"
STRANGER = "nobody@example.com"
ACME_QR = "data:image/png;base64,QUNNRS1TRUNSRVQtUVI="
GLOBEX_QR = "data:image/png;base64,R0xPQkVYLVFS"
# Strings that exist only in Acme's data: none may show up in an outsider's response.
ACME_MARKERS = ["Acme Secret Bakery", "acme-secret-bakery", "QUNNRS1TRUNSRVQtUVI", "15550001111",
                "acme-secret-message", "acme-chat@c.us", OWNER]

STATUS = "/api/portal/tenant/current/status"
QR = "/api/portal/tenant/current/qr"
LOGS = "/api/portal/tenant/current/logs"
EVENTS = "/api/portal/tenant/current/events"
SETUP = "/api/portal/setup-request"
TENANT_ENDPOINTS = [STATUS, QR, LOGS, EVENTS]
ALL_CALLS = [("get", url) for url in [*TENANT_ENDPOINTS, SETUP]] + [("post", SETUP)]
SETUP_BODY = {"business_name": "Initech", "phone": "+1 555 000 2222"}


@pytest.fixture(autouse=True)
def _portal_settings(settings):
    settings.PORTAL_INTERNAL_KEY = KEY
    settings.PORTAL_SSE_POLL_MS = 50
    settings.PORTAL_SSE_KEEPALIVE_SECONDS = 60
    settings.PORTAL_SSE_LIFETIME_SECONDS = 5
    settings.PORTAL_SSE_RETRY_MS = 2000


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def portal_client(email: str | None = OWNER, key: str | None = KEY) -> APIClient:
    client = APIClient()
    headers = {}
    if key is not None:
        headers["HTTP_X_PORTAL_KEY"] = key
    if email is not None:
        headers["HTTP_X_USER_EMAIL"] = email
    client.credentials(**headers)
    return client


def call(client: APIClient, method: str, url: str):
    if method == "post":
        return client.post(url, SETUP_BODY, format="json")
    return client.get(url)


def body_text(response) -> str:
    """The whole response body; for a stream, its first events."""
    if response.streaming:
        chunks = read_events(response, until=lambda events: "qr" in {e for e, _ in events})
        finish(response)
        return json.dumps(chunks)
    return response.content.decode()


def read_events(response, until, limit: int = 50) -> list[tuple[str, object]]:
    """(event, data) pairs from an SSE response, until `until(events)` holds; comments are ("", text)."""
    events: list[tuple[str, object]] = []
    stream = iter(response.streaming_content)
    for _ in range(limit):
        try:
            chunk = next(stream).decode()
        except StopIteration:
            break
        events.append(parse_message(chunk))
        if until(events):
            break
    return events


def finish(response) -> None:
    """Close a stream the way a WSGI server does when the client goes away.

    Not `response.close()`: the test client wraps the stream in a generator that
    closes the response without closing the test's database connection; closing
    that generator is what runs the stream's `finally`.
    """
    response._iterator.close()


def parse_message(chunk: str) -> tuple[str, object]:
    fields = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if not line.startswith(":"))
    if chunk.startswith(":"):
        return "", chunk.strip()
    if "retry" in fields:
        return "retry", int(fields["retry"])
    return fields["event"], json.loads(fields["data"])


@pytest.fixture
def acme(make_tenant) -> Tenant:
    tenant = make_tenant("Acme Secret Bakery")
    services.membership_add(tenant=tenant, email=OWNER)
    services.session_transition(
        tenant_id=tenant.pk, to=SessionState.QR_READY, qr=ACME_QR, qr_issued_at=timezone.now(),
        phone="15550001111",
    )
    for n, (direction, status, chat) in enumerate(
        [
            ("in", MessageStatus.RECEIVED, "acme-chat@c.us"),
            ("out", MessageStatus.REPLIED, "acme-chat@c.us"),
            ("in", MessageStatus.NO_MATCH, "other-chat@c.us"),
        ]
    ):
        MessageLog.objects.create(
            tenant=tenant, message_id=f"acme-{n}", chat=chat, direction=direction, status=status,
            body=f"acme-secret-message {n}",
        )
    return Tenant.objects.get(pk=tenant.pk)


@pytest.fixture
def globex(make_tenant) -> Tenant:
    tenant = make_tenant("Globex")
    services.membership_add(tenant=tenant, email=OUTSIDER)
    services.session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=GLOBEX_QR,
                                qr_issued_at=timezone.now())
    MessageLog.objects.create(tenant=tenant, message_id="globex-1", chat="g@c.us", direction="in",
                              status="received", body="globex message")
    return tenant


# --- the matrix: every endpoint × every kind of caller ------------------------


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
def test_a_call_without_the_portal_key_is_a_401(acme, method, url):
    response = call(portal_client(key=None), method, url)
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert "X-Portal-Key" in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
@pytest.mark.parametrize("key", ["wrong", KEY + "x", KEY[:-1], " ", "ключ"])
def test_a_call_with_a_wrong_portal_key_is_a_401(acme, method, url, key):
    response = call(portal_client(key=key), method, url)
    assert response.status_code == 401
    assert error_code(response) in {"authentication_failed", "not_authenticated"}
    assert not any(marker in response.content.decode() for marker in ACME_MARKERS)


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
def test_with_no_key_configured_the_portal_refuses_to_serve_at_all(acme, method, url):
    with override_settings(PORTAL_INTERNAL_KEY=""):
        for client in (portal_client(), portal_client(key=""), portal_client(key=None)):
            response = call(client, method, url)
            assert response.status_code == 503
            assert error_code(response) == "portal_disabled"
    assert SetupRequest.objects.count() == 0


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
@pytest.mark.parametrize("email", [None, "", "not-an-email", "a@b@c", "x" * 250 + "@example.com"])
def test_a_call_without_a_valid_user_email_is_a_401(acme, method, url, email):
    response = call(portal_client(email=email), method, url)
    assert response.status_code == 401
    assert error_code(response) in {"not_authenticated", "authentication_failed"}
    assert "X-User-Email" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", TENANT_ENDPOINTS)
def test_a_user_without_a_tenant_gets_404_no_tenant(acme, url):
    response = portal_client(email=STRANGER).get(url)
    assert response.status_code == 404
    assert error_code(response) == "no_tenant"
    assert not any(marker in response.content.decode() for marker in ACME_MARKERS)


def test_a_user_without_a_tenant_or_request_gets_404_for_the_setup_request(acme):
    response = portal_client(email=STRANGER).get(SETUP)
    assert response.status_code == 404
    assert error_code(response) == "no_setup_request"


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
def test_a_member_of_another_tenant_gets_nothing_of_this_one(acme, globex, method, url):
    response = call(portal_client(email=OUTSIDER), method, url)
    text = body_text(response)
    assert not [marker for marker in ACME_MARKERS if marker in text]
    if url in TENANT_ENDPOINTS:
        assert response.status_code == 200
        assert "Globex" in text or "globex" in text or GLOBEX_QR in text


@pytest.mark.parametrize(("method", "url"), ALL_CALLS)
def test_a_member_gets_exactly_their_own_data(acme, globex, method, url):
    response = call(portal_client(email=OWNER), method, url)
    text = body_text(response)
    assert "Globex" not in text
    assert "globex" not in text
    assert GLOBEX_QR not in text
    if url in TENANT_ENDPOINTS:
        assert response.status_code == 200
    elif method == "get":
        assert response.status_code == 404  # the owner never asked for a setup
    else:
        assert response.status_code == 409  # they already have a tenant
        assert error_code(response) == "conflict"


# --- each endpoint's body -------------------------------------------------------


def test_status_shows_the_tenant_session_worker_and_setup_request(acme):
    body = portal_client(email="OWNER@Acme.Example").get(STATUS).json()
    assert set(body) == {"tenant", "session", "worker", "setupRequest"}
    assert {"id", "name", "slug", "status", "created_at"} <= set(body["tenant"])
    assert (body["tenant"]["id"], body["tenant"]["name"]) == (acme.pk, "Acme Secret Bakery")
    assert {"state", "phone", "qr_issued_at", "last_seen_at", "last_error"} <= set(body["session"])
    assert body["session"]["state"] == "QR_READY"
    assert "qr" not in body["session"]  # the QR itself only comes from /qr
    assert {"status", "desired_state", "host", "node", "pid", "started_at", "heartbeat_at",
            "restart_count", "last_error"} <= set(body["worker"])
    assert body["setupRequest"] is None


def test_qr_is_the_data_uri_while_the_session_waits_for_a_scan(acme):
    body = portal_client().get(QR).json()
    assert body["state"] == "QR_READY"
    assert body["qr"] == ACME_QR
    assert body["qr_issued_at"] is not None


@pytest.mark.parametrize("state", [SessionState.CONNECTED, SessionState.DISCONNECTED, SessionState.LOGGED_OUT])
def test_qr_is_null_unless_the_session_is_qr_ready(acme, state):
    services.session_transition(tenant_id=acme.pk, to=state)
    body = portal_client().get(QR).json()
    assert (body["state"], body["qr"], body["qr_issued_at"]) == (state, None, None)


def test_qr_is_null_when_there_is_none_yet(make_tenant):
    tenant = make_tenant("Fresh")
    services.membership_add(tenant=tenant, email=OWNER)
    assert portal_client().get(QR).json() == {"state": "NEW", "qr": None, "qr_issued_at": None}


def test_logs_are_the_tenants_own_newest_first_in_the_designed_shape(acme, globex):
    body = portal_client().get(LOGS).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert [entry["message_id"] for entry in body["results"]] == ["acme-2", "acme-1", "acme-0"]
    assert set(body["results"][0]) == {
        "id", "message_id", "chat", "direction", "body", "status", "created_at", "source", "kind", "author",
        "in_reply_to", "updated_at", "completed_at", "latency_ms", "error",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("chat=acme-chat@c.us", ["acme-1", "acme-0"]),
        ("direction=out", ["acme-1"]),
        ("direction=in", ["acme-2", "acme-0"]),
        ("status=no_match", ["acme-2"]),
        ("direction=in&chat=acme-chat@c.us", ["acme-0"]),
        ("chat=g@c.us", []),  # Globex's chat: nothing leaks through a filter
        ("chat=&direction=&status=", ["acme-2", "acme-1", "acme-0"]),  # empty means any
    ],
)
def test_logs_are_filtered(acme, globex, query, expected):
    body = portal_client().get(f"{LOGS}?{query}").json()
    assert [entry["message_id"] for entry in body["results"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("direction=sideways", "direction"), ("status=lost", "status"), ("chat=" + "x" * 200, "chat"),
     ("chat=a%00b", "chat")],
)
def test_an_invalid_log_filter_is_a_400_naming_it(acme, query, field):
    response = portal_client().get(f"{LOGS}?{query}")
    assert response.status_code == 400
    assert error_code(response) == "invalid"
    assert field in response.json()["error"]["details"]


def test_logs_are_paginated(acme):
    for n in range(5):
        MessageLog.objects.create(tenant=acme, message_id=f"more-{n}", chat="c", direction="in", status="received")
    client = portal_client()
    first = client.get(f"{LOGS}?page_size=3").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (8, 3, None)
    assert first["next"] is not None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 3
    assert not {e["id"] for e in first["results"]} & {e["id"] for e in second["results"]}
    assert len(client.get(f"{LOGS}?page_size=1000").json()["results"]) == 8  # capped at 500, not refused
    response = client.get(f"{LOGS}?page=99")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# --- setup requests -------------------------------------------------------------


def test_a_user_without_a_tenant_asks_for_a_setup_and_is_approved(db):
    client = portal_client(email="new@initech.example")
    response = client.post(SETUP, SETUP_BODY, format="json")
    assert response.status_code == 201
    created = response.json()
    assert (created["business_name"], created["phone"], created["state"], created["tenant"]) == (
        "Initech", "+15550002222", "PENDING", None,
    )
    assert client.get(SETUP).json()["id"] == created["id"]

    again = client.post(SETUP, SETUP_BODY, format="json")
    assert again.status_code == 409
    assert "pending" in again.json()["error"]["message"]
    assert client.get(STATUS).status_code == 404

    services.setup_request_approve(request_id=created["id"], decided_by="staff")
    status = client.get(STATUS).json()
    assert status["tenant"]["name"] == "Initech"
    assert status["setupRequest"]["state"] == "APPROVED"
    assert status["setupRequest"]["tenant"] == status["tenant"]["id"]
    assert client.post(SETUP, SETUP_BODY, format="json").status_code == 409  # has a tenant now


def test_after_a_rejection_the_user_may_ask_again(db):
    client = portal_client(email="new@initech.example")
    first = client.post(SETUP, SETUP_BODY, format="json").json()
    services.setup_request_reject(request_id=first["id"], decided_by="staff", note="call us")
    rejected = client.get(SETUP).json()
    assert (rejected["state"], rejected["note"]) == ("REJECTED", "call us")
    second = client.post(SETUP, SETUP_BODY, format="json")
    assert second.status_code == 201
    assert client.get(SETUP).json()["id"] == second.json()["id"]


def test_setup_requests_are_per_user_whatever_the_case_of_the_email(db):
    portal_client(email="New@Initech.example").post(SETUP, SETUP_BODY, format="json")
    assert portal_client(email="new@initech.EXAMPLE").post(SETUP, SETUP_BODY, format="json").status_code == 409
    assert portal_client(email=STRANGER).get(SETUP).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"business_name": "Initech"},
        {"business_name": "", "phone": "+15550002222"},
        {"business_name": "   ", "phone": "+15550002222"},
        {"business_name": "Initech", "phone": "call me"},
        {"business_name": "Initech", "phone": "123"},
        {"business_name": "Initech", "phone": "+1555000222233334444555"},
        {"business_name": ["Initech"], "phone": "+15550002222"},
        {"business_name": "x" * 201, "phone": "+15550002222"},
        {"business_name": "Initech", "phone": 15550002222},
        {"business_name": "Initech", "phone": "+15550002222", "email": "other@example.com"},
    ],
)
def test_a_bad_setup_request_is_a_400(db, body):
    response = portal_client(email="new@initech.example").post(SETUP, body, format="json")
    assert response.status_code == 400
    assert error_code(response) == "invalid"
    assert not SetupRequest.objects.exists()


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code"),
    [
        ('{"business_name": ', "application/json", 400, "malformed_request"),
        ('["Initech"]', "application/json", 400, "invalid"),
        ("null", "application/json", 400, "invalid"),
        ("business_name=Initech", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_a_malformed_setup_request_is_a_4xx_not_a_500(db, payload, content_type, status, code):
    response = portal_client(email="new@initech.example").generic("POST", SETUP, payload, content_type=content_type)
    assert response.status_code == status
    assert error_code(response) == code


# --- Server-Sent Events ---------------------------------------------------------


def test_events_start_with_the_status_and_the_qr(acme):
    response = portal_client().get(EVENTS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    events = read_events(response, until=lambda events: len(events) >= 3)
    finish(response)
    assert events[0] == ("retry", 2000)
    assert events[1][0] == "status"
    assert events[1][1] == portal_client().get(STATUS).json()
    assert events[2] == ("qr", portal_client().get(QR).json())


def test_events_accept_the_event_stream_media_type(acme):
    response = portal_client().get(EVENTS, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    finish(response)
    stranger = portal_client(email=STRANGER).get(EVENTS, HTTP_ACCEPT="text/event-stream")
    assert stranger.status_code == 404
    assert error_code(stranger) == "no_tenant"


def test_a_new_qr_shows_up_as_an_event(acme):
    response = portal_client().get(EVENTS)
    stream = iter(response.streaming_content)
    first = [parse_message(next(stream).decode()) for _ in range(3)]
    assert first[2][1]["qr"] == ACME_QR

    rotated = "data:image/png;base64,TkVXLVFS"
    services.session_transition(
        tenant_id=acme.pk, to=SessionState.QR_READY, qr=rotated, qr_issued_at=timezone.now() + timedelta(seconds=20)
    )
    later = []
    for _ in range(5):
        later.append(parse_message(next(stream).decode()))
        if later[-1][0] == "qr":
            break
    finish(response)
    qr_events = [data for event, data in later if event == "qr"]
    assert qr_events
    assert qr_events[0]["qr"] == rotated
    assert any(event == "status" for event, _ in later)  # the session row changed too


def test_a_linked_session_sends_a_qr_event_with_no_qr(acme):
    response = portal_client().get(EVENTS)
    stream = iter(response.streaming_content)
    for _ in range(3):
        next(stream)
    services.session_transition(tenant_id=acme.pk, to=SessionState.CONNECTED, qr="")
    later = [parse_message(next(stream).decode()) for _ in range(2)]
    finish(response)
    assert ("qr", {"state": "CONNECTED", "qr": None, "qr_issued_at": None}) in later


def test_a_stream_ends_when_the_membership_is_revoked(acme):
    response = portal_client().get(EVENTS)
    stream = iter(response.streaming_content)
    for _ in range(3):
        next(stream)
    PortalMembership.objects.filter(email=OWNER).delete()
    event, data = parse_message(next(stream).decode())
    assert (event, data["error"]["code"]) == ("gone", "no_tenant")
    assert list(stream) == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_quiet_stream_sends_keep_alives_and_ends_after_its_lifetime(acme):
    clock = FakeClock()
    messages = list(
        tenant_events(email=OWNER, poll_seconds=1, keepalive_seconds=15, lifetime_seconds=60, retry_ms=2500,
                      clock=clock, sleep=clock.sleep)
    )
    assert messages[0] == "retry: 2500\n\n"
    assert [m.split("\n")[0] for m in messages[1:3]] == ["event: status", "event: qr"]
    assert messages.count(": keep-alive\n\n") == 3  # at 15, 30 and 45 s
    assert messages[-1].startswith(": lifetime reached")
    assert len(messages) == 7  # nothing else: no change, no event
    assert 1060 <= clock.now <= 1061


@pytest.mark.django_db(transaction=True)
def test_a_finished_stream_gives_its_database_connection_back():
    tenant = services.tenant_create(name="Acme")
    services.membership_add(tenant=tenant, email=OWNER)
    clock = FakeClock()
    stream = tenant_events(email=OWNER, poll_seconds=1, keepalive_seconds=15, lifetime_seconds=60, retry_ms=1,
                           clock=clock, sleep=clock.sleep)
    next(stream), next(stream)
    assert connection.connection is not None
    stream.close()  # the client went away
    assert connection.connection is None


# --- Django admin: approving and rejecting setup requests ------------------------


@pytest.fixture
def admin_client_(db) -> APIClient:
    user = get_user_model().objects.create_superuser(username="root", password="pw-root-123", email="r@x.io")
    client = APIClient()
    client.force_login(user)
    return client


def test_the_admin_approves_setup_requests_creating_tenant_and_membership(admin_client_):
    pending = services.setup_request_submit(email="a@initech.example", business_name="Initech", phone="15550002222")
    decided = services.setup_request_submit(email="b@initech.example", business_name="Other", phone="15550003333")
    services.setup_request_reject(request_id=decided.pk, decided_by="staff")
    response = admin_client_.post(
        "/admin/tenants/setuprequest/",
        {"action": "approve", "_selected_action": [pending.pk, decided.pk]},
        follow=True,
    )
    assert response.status_code == 200
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Approved Initech" in note for note in notes)
    assert any("already rejected" in note for note in notes)
    pending.refresh_from_db()
    assert (pending.state, pending.decided_by) == (SetupRequestState.APPROVED, "root")
    assert PortalMembership.objects.get(email="a@initech.example").tenant == pending.tenant
    assert pending.tenant.name == "Initech"


def test_the_admin_rejects_setup_requests(admin_client_):
    pending = services.setup_request_submit(email="a@initech.example", business_name="Initech", phone="15550002222")
    response = admin_client_.post(
        "/admin/tenants/setuprequest/", {"action": "reject", "_selected_action": [pending.pk]}, follow=True
    )
    assert response.status_code == 200
    assert any("Rejected Initech" in str(m) for m in get_messages(response.wsgi_request))
    pending.refresh_from_db()
    assert pending.state == SetupRequestState.REJECTED
    assert not Tenant.objects.exists()


def test_approving_for_a_user_who_joined_a_tenant_meanwhile_is_an_admin_message(admin_client_, acme):
    pending = SetupRequest.objects.create(email=OWNER.upper(), business_name="Again", phone="15550002222")
    response = admin_client_.post(
        "/admin/tenants/setuprequest/", {"action": "approve", "_selected_action": [pending.pk]}, follow=True
    )
    assert response.status_code == 200
    assert any("another tenant" in str(m) for m in get_messages(response.wsgi_request))
    pending.refresh_from_db()
    assert pending.state == SetupRequestState.PENDING  # nothing half-written
    assert Tenant.objects.count() == 1


# --- event streams are bounded per process ----------------------------------------


@pytest.fixture
def slots(monkeypatch, settings) -> events.StreamSlots:
    fresh = events.StreamSlots()
    monkeypatch.setattr(events, "SLOTS", fresh)
    settings.PORTAL_SSE_MAX_STREAMS = 2
    return fresh


def test_streams_beyond_the_limit_get_a_clear_503_and_a_finished_one_frees_its_slot(acme, slots):
    client = portal_client()
    first, second = client.get(EVENTS), client.get(EVENTS)
    assert (first.status_code, second.status_code, slots.in_use) == (200, 200, 2)
    refused = client.get(EVENTS)
    assert refused.status_code == 503
    assert error_code(refused) == "too_many_streams"
    assert refused.json()["error"]["details"] == {"limit": 2}
    assert refused["Retry-After"] == "2"
    assert client.get(STATUS).status_code == 200, "the API itself is not limited"

    read_events(first, until=lambda events: len(events) >= 2)
    finish(first)  # the client went away mid-stream
    assert slots.in_use == 1
    third = client.get(EVENTS)
    assert third.status_code == 200
    for response in (second, third):
        read_events(response, until=lambda events: len(events) >= 1)
        finish(response)
    assert slots.in_use == 0


def test_a_stream_the_server_closes_unread_gives_its_slot_back(acme, slots):
    response = portal_client().get(EVENTS)
    assert slots.in_use == 1
    response._iterator.close()  # closed before a byte was sent: the generator never started
    response.close()
    assert slots.in_use == 0
    response.close()  # twice is harmless
    assert slots.in_use == 0


def test_a_web_process_answers_the_api_while_its_streams_are_at_the_limit(acme, transactional_db, tmp_path):
    """Real gunicorn, one process with two threads: one stream may hold a thread, never both."""
    port = free_port()
    env = child_env(PORTAL_INTERNAL_KEY=KEY, WEB_THREADS="2", PORTAL_SSE_MAX_STREAMS="1",
                    PORTAL_SSE_POLL_MS="100", PORTAL_SSE_KEEPALIVE_SECONDS="1")
    with (tmp_path / "gunicorn.log").open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "flowhq.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--threads", "2", "--access-logfile", "-"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base, headers = f"http://127.0.0.1:{port}", {"X-Portal-Key": KEY, "X-User-Email": OWNER}
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, what="gunicorn")
        with requests.get(f"{base}{EVENTS}", headers=headers, stream=True, timeout=10) as held:
            assert held.status_code == 200
            lines = held.iter_lines()  # kept: a dropped line iterator closes the connection
            assert next(lines) == b"retry: 2000"
            refused = requests.get(f"{base}{EVENTS}", headers=headers, timeout=5)
            assert (refused.status_code, refused.json()["error"]["code"]) == (503, "too_many_streams")
            for _ in range(5):
                assert requests.get(f"{base}{STATUS}", headers=headers, timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    # gunicorn's own lines are structured like every other process's.
    access = [line for line in (tmp_path / "gunicorn.log").read_text().splitlines() if " gunicorn.access " in line]
    assert any(f"path={EVENTS} remote=127.0.0.1 status=503" in line for line in access), access


LOGOUT = "/api/portal/tenant/current/session/logout"


def test_a_member_logs_out_their_own_linked_device_and_no_one_else_can(acme, globex, settings, tmp_path):
    settings.SESSIONS_PATH = tmp_path
    services.session_transition(tenant_id=acme.pk, to=SessionState.CONNECTED, phone="15550001111")
    services.session_transition(tenant_id=globex.pk, to=SessionState.CONNECTED, phone="15550002222")
    assert portal_client(STRANGER).post(LOGOUT).status_code == 404
    assert portal_client(OWNER, key="wrong").post(LOGOUT).status_code == 401
    response = portal_client(OWNER).post(LOGOUT)
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["message"]) == ("LOGGED_OUT", "logged out")
    assert globex.session.__class__.objects.get(tenant=globex).state == SessionState.CONNECTED
    again = portal_client(OWNER).post(LOGOUT)
    assert (again.status_code, error_code(again)) == (409, "conflict")
