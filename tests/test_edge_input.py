"""What the edge refuses before a view sees it (issue 11, findings 7 and 10): text PostgreSQL
cannot store, JSON nested to crash the parser, non-string names, empty slugs, chunked bodies
(through real gunicorn), and secrets from query strings in log lines."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
import requests
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from flowhq.api.parsers import MAX_JSON_DEPTH, json_depth
from flowhq.chunked import reads_chunked_bodies
from tenants.models import PortalMembership, Tenant
from tests.conftest import STAFF_PASSWORD
from tests.harness import gunicorn, wait_for

TENANTS = "/api/admin/tenants"
PORTAL_KEY = "edge-portal-key"


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- the four 5xx of finding 7 ------------------------------------------------------------------


def test_basic_auth_with_a_nul_in_the_user_name_is_a_401(anon, db):
    anon.credentials(HTTP_AUTHORIZATION=basic("st\x00aff", "whatever"))
    response = anon.get(TENANTS)
    assert response.status_code == 401
    assert error(response)["code"] == "authentication_failed"


def test_basic_auth_with_a_user_name_longer_than_any_user_can_have_is_a_401(anon, db):
    anon.credentials(HTTP_AUTHORIZATION=basic("x" * 300, "whatever"))
    assert anon.get(TENANTS).status_code == 401


@pytest.mark.parametrize("body", [
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 20_000 + "1" + "}" * 20_000,
])
def test_100_kb_of_nested_json_is_a_400_not_a_recursion_error(api, body):
    assert len(body) >= 100_000
    response = api.generic("POST", TENANTS, body, content_type="application/json")
    assert response.status_code == 400
    assert error(response)["code"] == "malformed_request"
    assert f"nested deeper than {MAX_JSON_DEPTH}" in error(response)["message"]
    assert not Tenant.objects.exists()


def test_nesting_is_counted_outside_strings_only(api):
    name = "[{" * 40 + 'a "quoted" \\ name'
    response = api.post(TENANTS, {"name": name}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == name
    assert json_depth(json.dumps([[[{"a": "]]]]"}]]]).encode(), stop_above=10) == 4


def test_unlinking_a_member_whose_email_holds_a_nul_is_a_400_not_a_data_error(api, tenant):
    PortalMembership.objects.create(tenant=tenant, email="ab@c.com")
    response = api.delete(f"{TENANTS}/{tenant.pk}/members/a%00b@c.com")
    assert response.status_code == 400
    assert "path" in error(response)["details"]
    assert PortalMembership.objects.filter(tenant=tenant).count() == 1


# --- NUL and lone surrogates wherever they can come in ---------------------------------------------


@pytest.mark.parametrize(("raw", "where"), [
    ('{"name": "a\\u0000b"}', "$.name"),
    ('{"name": "a\\ud800b"}', "$.name"),
    ('{"name": "ok", "slug": "x\\udfffy"}', "$.slug"),
    ('{"na\\u0000me": "ok"}', "a key"),
])
def test_a_json_body_with_unstorable_text_is_a_400_naming_where(api, raw, where):
    response = api.generic("POST", TENANTS, raw, content_type="application/json")
    assert response.status_code == 400
    assert error(response)["code"] == "malformed_request"
    assert where in error(response)["message"]
    assert not Tenant.objects.exists()


def test_the_portal_refuses_unstorable_json_too(db, settings):
    settings.PORTAL_INTERNAL_KEY = PORTAL_KEY
    client = APIClient()
    client.credentials(HTTP_X_PORTAL_KEY=PORTAL_KEY, HTTP_X_USER_EMAIL="new@initech.example")
    raw = '{"business_name": "Ini\\u0000tech", "phone": "+15550002222"}'
    response = client.generic("POST", "/api/portal/setup-request", raw, content_type="application/json")
    assert response.status_code == 400
    assert "$.business_name" in error(response)["message"]


@pytest.mark.parametrize("query", ["status=a%00b", "page=1&x%00y=1", "chat=%00"])
def test_a_nul_in_the_query_string_is_a_400(api, query):
    response = api.get(f"{TENANTS}?{query}")
    assert response.status_code == 400
    assert error(response)["code"] == "invalid"


def test_a_nul_in_a_header_is_a_400(api):
    response = api.get(TENANTS, HTTP_X_REQUEST_ID="a\x00b")
    assert response.status_code == 400
    assert "X-Request-Id" in error(response)["details"]


def test_the_portal_email_header_with_a_nul_is_a_400(db, settings):
    settings.PORTAL_INTERNAL_KEY = PORTAL_KEY
    client = APIClient()
    client.credentials(HTTP_X_PORTAL_KEY=PORTAL_KEY, HTTP_X_USER_EMAIL="a\x00b@example.com")
    response = client.get("/api/portal/tenant/current/status")
    assert response.status_code == 400
    assert "X-User-Email" in error(response)["details"]


def test_the_admin_refuses_a_nul_in_its_query_string_with_a_plain_400(admin_client):
    response = admin_client.get(reverse("admin:tenants_tenant_changelist") + "?q=%00")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert b"NUL" in response.content


# --- names and slugs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [123, 1.5, True, ["Acme"], {"a": 1}])
def test_a_name_that_is_not_a_string_is_a_400(api, name):
    response = api.post(TENANTS, {"name": name}, format="json")
    assert response.status_code == 400
    assert error(response)["details"]["name"] == ["Must be a string."]
    assert not Tenant.objects.exists()


def test_a_name_that_is_not_a_string_cannot_be_patched_in_either(api, tenant):
    response = api.patch(f"{TENANTS}/{tenant.pk}", {"name": 42}, format="json")
    assert response.status_code == 400
    assert error(response)["details"]["name"] == ["Must be a string."]


@pytest.mark.parametrize("slug", ["-", "_", "--__--"])
def test_a_slug_with_no_letter_or_digit_is_a_400(api, slug):
    response = api.post(TENANTS, {"name": "Acme", "slug": slug}, format="json")
    assert response.status_code == 400
    assert "slug" in error(response)["details"]
    assert not Tenant.objects.exists()


def test_a_slug_with_no_letter_or_digit_cannot_be_patched_in_either(api, tenant):
    response = api.patch(f"{TENANTS}/{tenant.pk}", {"slug": "-"}, format="json")
    assert response.status_code == 400
    tenant.refresh_from_db()
    assert tenant.slug == "acme"


def test_the_admin_form_says_so_for_an_empty_slug(admin_client):
    response = admin_client.post(reverse("admin:tenants_tenant_add"), {
        "name": "Umbrella", "slug": "-", "rate_limit_per_minute": "",
        "templates-TOTAL_FORMS": "0", "templates-INITIAL_FORMS": "0",
        "members-TOTAL_FORMS": "0", "members-INITIAL_FORMS": "0",
        "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200
    assert "A slug needs a letter or a digit." in response.content.decode()
    assert not Tenant.objects.exists()


# --- chunked bodies ------------------------------------------------------------------------------------


def test_a_chunked_body_on_a_server_that_cannot_end_it_is_a_411():
    called = []
    app = reads_chunked_bodies(lambda environ, start_response: called.append(environ) or [])
    statuses = []
    body = app({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"{}")},
               lambda status, headers: statuses.append(status))
    assert statuses == ["411 Length Required"]
    assert json.loads(b"".join(body))["error"]["code"] == "length_required"
    assert not called


@pytest.fixture
def web(transactional_db, tmp_path):
    """Real gunicorn (flowhq.wsgi, as the Procfile runs it) on this test's database; its log file."""
    get_user_model().objects.create_user(username="staff", password=STAFF_PASSWORD, is_staff=True)
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, access_log=True, PORTAL_INTERNAL_KEY=PORTAL_KEY, MAX_REQUEST_BODY_BYTES="4096") as base:
        yield base, log_path


def chunks(data: bytes, size: int = 7):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_chunked_body_is_read_through_gunicorn(web):
    base, _ = web
    body = json.dumps({"name": "Chunky Bakery", "slug": "chunky"}).encode()
    response = requests.post(f"{base}{TENANTS}", data=chunks(body), timeout=10, headers={
        "Authorization": basic("staff", STAFF_PASSWORD), "Content-Type": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["slug"]) == ("Chunky Bakery", "chunky")
    assert Tenant.objects.filter(slug="chunky").exists()


def test_a_chunked_body_over_the_limit_is_a_413_through_gunicorn(web):
    base, _ = web
    body = json.dumps({"name": "x" * 5000}).encode()
    response = requests.post(f"{base}{TENANTS}", data=chunks(body, 1000), timeout=10, headers={
        "Authorization": basic("staff", STAFF_PASSWORD), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not Tenant.objects.exists()


def test_a_portal_key_in_a_query_string_is_not_in_gunicorns_log(web):
    base, log_path = web
    secret = "sekrit-portal-key-in-the-url"
    response = requests.get(f"{base}/api/portal/tenant/current/status", timeout=10,
                            params={"key": secret, "X-Portal-Key": secret, "page": "2"})
    assert response.status_code == 401
    wait_for(lambda: "django.request" in log_path.read_text(), 10, what="the 401's log line")
    log = log_path.read_text()
    assert secret not in log
    line = next(line for line in log.splitlines() if "django.request" in line)
    assert "key=[redacted]" in line
    assert "page=2" in line


def test_a_secret_in_a_query_string_is_redacted_by_the_configured_log_handler(anon, db):
    handler = next(h for h in logging.getLogger().handlers if any(
        type(f).__name__ == "RedactQueryStrings" for f in h.filters))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        response = anon.get(f"{TENANTS}?password=hunter2&token=t0ken&page=3")
    finally:
        handler.setStream(previous)
    assert response.status_code == 401
    written = stream.getvalue()
    assert "Unauthorized: /api/admin/tenants" in written
    assert "hunter2" not in written
    assert "t0ken" not in written
    assert "password=[redacted]&token=[redacted]&page=3" in written
