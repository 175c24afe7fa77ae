"""Control-plane API: tenant CRUD and portal members (staff only)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tenants import services
from tenants.models import MessageLog, PortalMembership, Tenant
from tenants.states import SessionState


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def test_staff_create_a_tenant_and_get_the_designed_shape(api):
    response = api.post("/api/admin/tenants", {"name": "Acme Bakery"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert {"id", "name", "slug", "status", "created_at"} <= set(body)
    assert (body["name"], body["slug"], body["status"]) == ("Acme Bakery", "acme-bakery", "NEW")
    assert api.get(f"/api/admin/tenants/{body['id']}").json()["name"] == "Acme Bakery"


def test_tenants_are_listed_paginated(api, make_tenant):
    for n in range(3):
        make_tenant(f"T{n}")
    body = api.get("/api/admin/tenants?page_size=2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_patch_changes_only_what_is_sent(api, tenant):
    response = api.patch(f"/api/admin/tenants/{tenant.pk}", {"rate_limit_per_minute": 7}, format="json")
    assert response.status_code == 200
    tenant.refresh_from_db()
    assert (tenant.name, tenant.rate_limit_per_minute) == ("Acme", 7)


def test_a_stopped_tenant_can_be_deleted(api, tenant):
    assert api.delete(f"/api/admin/tenants/{tenant.pk}").status_code == 204
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid"),
        ({"name": ""}, "invalid"),
        ({"name": "x", "nmae": "typo"}, "invalid"),
        ({"name": ["list"]}, "invalid"),
        ({"name": "x", "rate_limit_per_minute": "lots"}, "invalid"),
        ({"name": "x", "slug": "not a slug!"}, "invalid"),
    ],
)
def test_bad_tenant_input_is_a_400_with_the_error_shape(api, body, code):
    response = api.post("/api/admin/tenants", body, format="json")
    assert response.status_code == 400
    assert error_code(response) == code
    assert not Tenant.objects.exists()


def test_malformed_json_is_a_400_not_a_500(api):
    response = api.generic("POST", "/api/admin/tenants", '{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "malformed_request"


def test_a_json_array_body_is_refused(api):
    response = api.generic("POST", "/api/admin/tenants", '["x"]', content_type="application/json")
    assert response.status_code == 400


def test_an_oversized_body_is_a_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = api.post("/api/admin/tenants", {"name": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_an_unknown_tenant_is_a_404_in_the_error_shape(api, db):
    response = api.get("/api/admin/tenants/999999")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_a_duplicate_slug_is_a_409(api, make_tenant):
    make_tenant("Acme", slug="acme")
    response = api.post("/api/admin/tenants", {"name": "Other", "slug": "acme"}, format="json")
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_anonymous_callers_get_401_and_non_staff_403(anon, db):
    assert anon.get("/api/admin/tenants").status_code == 401
    get_user_model().objects.create_user(username="joe", password="pw-joe-123")
    client = APIClient()
    client.login(username="joe", password="pw-joe-123")
    response = client.get("/api/admin/tenants")
    assert response.status_code == 403
    assert error_code(response) == "permission_denied"


def test_token_and_session_authentication_work_for_staff(staff_user, tenant):
    token = Token.objects.create(user=staff_user)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert by_token.get("/api/admin/tenants").status_code == 200
    by_session = APIClient()
    by_session.force_login(staff_user)
    assert by_session.get(f"/api/admin/tenants/{tenant.pk}").status_code == 200


def test_members_are_linked_listed_and_removed(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/members"
    first = api.post(url, {"email": "owner@example.com"}, format="json")
    assert first.status_code == 201
    assert first.json()["tenant"] == tenant.pk
    assert api.post(url, {"email": "OWNER@example.com"}, format="json").status_code == 200
    assert [m["email"] for m in api.get(url).json()["results"]] == ["owner@example.com"]
    assert api.delete(f"{url}/owner@example.com").status_code == 204
    assert not PortalMembership.objects.exists()


def test_a_member_of_another_tenant_cannot_be_linked_again(api, make_tenant):
    first, second = make_tenant("A"), make_tenant("B")
    api.post(f"/api/admin/tenants/{first.pk}/members", {"email": "x@example.com"}, format="json")
    response = api.post(f"/api/admin/tenants/{second.pk}/members", {"email": "x@example.com"}, format="json")
    assert response.status_code == 409


def test_a_member_needs_a_valid_email(api, tenant):
    response = api.post(f"/api/admin/tenants/{tenant.pk}/members", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["error"]["details"]


# --- QR code and message log (read endpoints) -----------------------------------


def test_staff_see_a_tenants_qr_while_it_waits_for_a_scan(api, tenant):
    assert api.get(f"/api/admin/tenants/{tenant.pk}/qr").json() == {"state": "NEW", "qr": None, "qr_issued_at": None}
    services.session_transition(
        tenant_id=tenant.pk, to=SessionState.QR_READY, qr="data:image/png;base64,QUJD", qr_issued_at=timezone.now()
    )
    body = api.get(f"/api/admin/tenants/{tenant.pk}/qr").json()
    assert (body["state"], body["qr"]) == ("QR_READY", "data:image/png;base64,QUJD")
    assert body["qr_issued_at"] is not None
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED)
    assert api.get(f"/api/admin/tenants/{tenant.pk}/qr").json()["qr"] is None


def test_staff_read_a_tenants_log_filtered_and_paginated(api, make_tenant):
    acme, other = make_tenant("Acme"), make_tenant("Other")
    for n in range(4):
        MessageLog.objects.create(tenant=acme, message_id=f"a{n}", chat=f"c{n % 2}", direction="in" if n % 2 else "out",
                                  status="received")
    MessageLog.objects.create(tenant=other, message_id="o1", chat="c0", direction="in", status="received")
    url = f"/api/admin/tenants/{acme.pk}/logs"
    body = api.get(f"{url}?page_size=3").json()
    assert (body["count"], [e["message_id"] for e in body["results"]]) == (4, ["a3", "a2", "a1"])
    assert [e["message_id"] for e in api.get(f"{url}?chat=c0").json()["results"]] == ["a2", "a0"]
    assert [e["message_id"] for e in api.get(f"{url}?direction=in&chat=c1").json()["results"]] == ["a3", "a1"]
    bad = api.get(f"{url}?direction=up")
    assert bad.status_code == 400
    assert error_code(bad) == "invalid"


@pytest.mark.parametrize("suffix", ["qr", "logs"])
def test_the_read_endpoints_are_staff_only_and_404_for_unknown_tenants(anon, api, tenant, suffix):
    assert anon.get(f"/api/admin/tenants/{tenant.pk}/{suffix}").status_code == 401
    missing = api.get(f"/api/admin/tenants/999999/{suffix}")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"


def test_tenants_are_filtered_by_status_and_an_unknown_status_is_a_400(api, make_tenant):
    make_tenant("A")
    assert api.get("/api/admin/tenants?status=NEW").json()["count"] == 1
    assert api.get("/api/admin/tenants?status=RUNNING").json()["count"] == 0
    for bad in ["running", "NO_SUCH", "a%00b"]:
        response = api.get(f"/api/admin/tenants?status={bad}")
        assert response.status_code == 400
        assert "status" in response.json()["error"]["details"]


def test_the_tenant_object_carries_its_session_state_and_linked_phone(api, tenant):
    listed = api.get("/api/admin/tenants").json()["results"][0]
    assert (listed["session_state"], listed["phone"]) == ("NEW", "")
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001")
    for body in (api.get("/api/admin/tenants").json()["results"][0], api.get(f"/api/admin/tenants/{tenant.pk}").json(),
                 api.patch(f"/api/admin/tenants/{tenant.pk}", {"name": "Acme 2"}, format="json").json()):
        assert (body["session_state"], body["phone"]) == ("CONNECTED", "4915100000001")
    services.session_transition(tenant_id=tenant.pk, to=SessionState.LOGGED_OUT)
    body = api.get(f"/api/admin/tenants/{tenant.pk}").json()
    assert (body["session_state"], body["phone"]) == ("LOGGED_OUT", ""), "a number that is not linked is not shown"


def test_logout_of_a_session_that_is_not_linked_is_a_409_saying_so(api, tenant):
    response = api.post(f"/api/admin/tenants/{tenant.pk}/session/logout")
    assert (response.status_code, error_code(response)) == (409, "conflict")
    assert "not linked" in response.json()["error"]["message"]
    assert api.post("/api/admin/tenants/987654/session/logout").status_code == 404


def test_logout_with_no_worker_running_deletes_the_stored_link(api, tenant, settings, tmp_path):
    from workers.models import ProfileBackup

    settings.SESSIONS_PATH = tmp_path
    (tmp_path / str(tenant.pk)).mkdir()
    ProfileBackup.objects.create(tenant=tenant, data=b"x", digest="d", size=1, epoch=1, host="h")
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001")
    response = api.post(f"/api/admin/tenants/{tenant.pk}/session/logout")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["phone"], response.json()["message"]) == (
        "LOGGED_OUT", "", "logged out")
    assert not (tmp_path / str(tenant.pk)).exists()
    assert not ProfileBackup.objects.filter(tenant=tenant).exists()
    again = api.post(f"/api/admin/tenants/{tenant.pk}/session/logout")
    assert again.status_code == 409


def test_a_new_qr_for_a_linked_session_is_a_409(api, tenant):
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001")
    response = api.post(f"/api/admin/tenants/{tenant.pk}/session/new-qr")
    assert (response.status_code, error_code(response)) == (409, "conflict")
    assert "log it out" in response.json()["error"]["message"]


def test_session_commands_need_staff(anon, tenant):
    assert anon.post(f"/api/admin/tenants/{tenant.pk}/session/logout").status_code == 401
    assert anon.post(f"/api/admin/tenants/{tenant.pk}/session/new-qr").status_code == 401
