"""The webhook endpoints' API, for operators (control plane) and for a tenant (portal)."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from tenants import services as tenant_services
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

KEY = "portal-test-key-webhooks"
OWNER = "owner@acme.example"
OUTSIDER = "boss@globex.example"
URL = "http://127.0.0.1:9/hooks"


def hooks(tenant) -> str:
    return f"/api/admin/tenants/{tenant.pk}/webhooks"


def test_an_endpoint_is_created_with_its_secret_shown_once(api, tenant, caplog):
    created = api.post(hooks(tenant), {"url": URL, "events": ["message.received", "session.status"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["enabled"] is True
    assert body["events"] == ["message.received", "session.status"]
    for response in (api.get(hooks(tenant)), api.get(f"{hooks(tenant)}/{body['id']}")):
        assert response.status_code == 200
        assert body["secret"] not in response.content.decode()
    assert body["secret"] not in caplog.text


def test_rotating_gives_a_new_secret_and_keeps_the_old_one_for_the_overlap(api, tenant):
    first = api.post(hooks(tenant), {"url": URL, "events": ["*"]}, format="json").json()
    rotated = api.post(f"{hooks(tenant)}/{first['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != first["secret"]
    assert rotated.json()["secret_rotating_until"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.previous_secret == first["secret"]


def test_update_disable_and_delete(api, tenant):
    made = api.post(hooks(tenant), {"url": URL, "events": ["*"]}, format="json").json()
    detail = f"{hooks(tenant)}/{made['id']}"
    changed = api.patch(detail, {"events": ["worker.status"], "description": "CRM"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["events"] == ["worker.status"]
    api.post(f"{detail}/test")
    assert api.patch(detail, {"enabled": False}, format="json").json()["enabled"] is False
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED, "disabling fails what was pending"
    assert api.delete(detail).status_code == 204
    assert api.get(detail).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"url": URL, "events": []}, "events"),
    ({"url": URL, "events": ["message.nope"]}, "events"),
    ({"url": "ftp://x.example/", "events": ["*"]}, "url"),
    ({"url": URL, "events": ["*"], "secret": "mine"}, "secret"),
    ({"events": ["*"]}, "url"),
])
def test_bad_input_is_a_clear_400(api, tenant, body, field):
    response = api.post(hooks(tenant), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hooks", "http://10.0.0.5/hooks",
                                 "http://169.254.169.254/latest", "http://localhost/x", "http://[::1]:80/"])
def test_a_private_address_url_is_refused_with_a_clear_400(api, tenant, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = api.post(hooks(tenant), {"url": url, "events": ["*"]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "webhook_url_refused"
    assert "private, loopback, link-local or reserved" in error["message"]
    assert "url" in error["details"]
    made = WebhookEndpoint.objects.create(tenant=tenant, url="https://example.com/", events=["*"], secret="x")
    patched = api.patch(f"{hooks(tenant)}/{made.pk}", {"url": url}, format="json")
    assert patched.status_code == 400
    assert patched.json()["error"]["code"] == "webhook_url_refused"
    assert WebhookEndpoint.objects.get().url == "https://example.com/"


def test_a_test_event_is_queued_and_listed_in_the_deliveries(api, tenant):
    made = api.post(hooks(tenant), {"url": URL, "events": ["message.received"]}, format="json").json()
    queued = api.post(f"{hooks(tenant)}/{made['id']}/test")
    assert queued.status_code == 202
    assert queued.json()["type"] == "webhook.test"
    listed = api.get(f"{hooks(tenant)}/{made['id']}/deliveries").json()
    assert listed["count"] == 1
    assert listed["results"][0]["event_id"] == queued.json()["event_id"]
    assert listed["results"][0]["status"] == "PENDING"


def test_staff_only_and_other_tenants_endpoints_are_not_found(api, anon, tenant, make_tenant):
    other = make_tenant("Globex")
    made = api.post(hooks(other), {"url": URL, "events": ["*"]}, format="json").json()
    assert anon.get(hooks(tenant)).status_code == 401
    assert api.get(f"{hooks(tenant)}/{made['id']}").status_code == 404
    assert api.post(f"{hooks(tenant)}/{made['id']}/rotate-secret").status_code == 404
    assert api.get("/api/admin/tenants/999999/webhooks").status_code == 404


@pytest.fixture
def portal(settings, tenant, make_tenant):
    settings.PORTAL_INTERNAL_KEY = KEY
    tenant_services.membership_add(tenant=tenant, email=OWNER)
    tenant_services.membership_add(tenant=make_tenant("Globex"), email=OUTSIDER)

    def client(email: str) -> APIClient:
        c = APIClient()
        c.credentials(HTTP_X_PORTAL_KEY=KEY, HTTP_X_USER_EMAIL=email)
        return c

    return client


def test_a_tenant_manages_its_own_webhooks_in_the_portal_and_an_outsider_sees_none(portal, tenant):
    owner, outsider = portal(OWNER), portal(OUTSIDER)
    base = "/api/portal/tenant/current/webhooks"
    made = owner.post(base, {"url": URL, "events": ["message.received"]}, format="json")
    assert made.status_code == 201
    assert made.json()["secret"].startswith("whsec_")
    wid = made.json()["id"]
    assert WebhookEndpoint.objects.get().tenant_id == tenant.pk
    assert owner.get(base).json()["count"] == 1
    assert owner.post(f"{base}/{wid}/test").status_code == 202
    assert owner.get(f"{base}/{wid}/deliveries").json()["count"] == 1
    assert owner.post(f"{base}/{wid}/rotate-secret").json()["secret"] != made.json()["secret"]
    assert outsider.get(base).json()["count"] == 0
    for method, path in [("get", f"{base}/{wid}"), ("patch", f"{base}/{wid}"), ("delete", f"{base}/{wid}"),
                         ("post", f"{base}/{wid}/rotate-secret"), ("post", f"{base}/{wid}/test"),
                         ("get", f"{base}/{wid}/deliveries")]:
        response = getattr(outsider, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert "secret" not in response.content.decode()
    assert owner.patch(f"{base}/{wid}", {"enabled": False}, format="json").json()["enabled"] is False
    assert owner.delete(f"{base}/{wid}").status_code == 204
    assert not APIClient().get(base).status_code < 400


def test_each_webhook_operation_has_its_own_description_in_the_schema(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate")
    schema = yaml.safe_load(out.read_text())
    ops = [(path, method, op) for path, item in schema["paths"].items() if "webhooks" in path
           for method, op in item.items()]
    assert len(ops) >= 16
    summaries = [op["summary"] for _, _, op in ops]
    assert len(set(summaries)) == len(summaries), "every operation says what it does"
