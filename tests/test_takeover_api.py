"""Human takeover through the APIs: operators and the tenant's portal see a chat's pause and end it.
A member of another tenant sees (and ends) nothing of this one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import services
from tenants.models import ChatPause
from tenants.takeover import chat_pause_active, chat_pause_renew

KEY = "takeover-portal-key"
OWNER = "owner@acme.example"
OUTSIDER = "boss@globex.example"
CHAT = "4917000000001@c.us"


@pytest.fixture(autouse=True)
def _portal_key(settings):
    settings.PORTAL_INTERNAL_KEY = KEY


def portal(email: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_PORTAL_KEY=KEY, HTTP_X_USER_EMAIL=email)
    return client


@pytest.fixture
def acme(make_tenant):
    tenant = make_tenant("Acme")
    services.membership_add(tenant=tenant, email=OWNER)
    chat_pause_renew(tenant_id=tenant.pk, chat=CHAT, until=timezone.now() + timedelta(minutes=30))
    return tenant


@pytest.fixture
def globex(make_tenant):
    tenant = make_tenant("Globex")
    services.membership_add(tenant=tenant, email=OUTSIDER)
    return tenant


def test_a_renewal_only_ever_extends_a_pause(acme):
    pause = ChatPause.objects.get(tenant=acme, chat=CHAT)
    chat_pause_renew(tenant_id=acme.pk, chat=CHAT, until=pause.paused_until - timedelta(minutes=10))
    assert ChatPause.objects.get(pk=pause.pk).paused_until == pause.paused_until
    later = pause.paused_until + timedelta(minutes=5)
    chat_pause_renew(tenant_id=acme.pk, chat=CHAT, until=later)
    assert ChatPause.objects.get(pk=pause.pk).paused_until == later


def test_a_pause_past_its_time_is_over(acme):
    assert chat_pause_active(tenant_id=acme.pk, chat=CHAT) is not None
    assert chat_pause_active(tenant_id=acme.pk, chat=CHAT, now=timezone.now() + timedelta(hours=1)) is None


@pytest.mark.parametrize("chat", ["4917000000001", "4917000000001@c.us"])
def test_operators_see_a_pause_by_number_or_chat_id_and_end_it(acme, api, chat):
    url = f"/api/admin/tenants/{acme.pk}/chats/{chat}/pause"
    body = api.get(url).json()
    assert body["chat"] == CHAT
    assert body["paused"] is True
    assert body["reason"] == "the owner answered from the phone"
    assert body["paused_until"]
    listed = api.get(f"/api/admin/tenants/{acme.pk}/chats/paused").json()
    assert [p["chat"] for p in listed["results"]] == [CHAT]
    ended = api.delete(url)
    assert ended.status_code == 200
    assert ended.json() == {"chat": CHAT, "paused": False, "paused_until": None, "reason": ""}
    assert api.delete(url).status_code == 200, "idempotent"
    assert api.get(url).json()["paused"] is False
    assert api.get(f"/api/admin/tenants/{acme.pk}/chats/paused").json()["count"] == 0


def test_a_chat_that_is_no_chat_id_and_an_unknown_tenant_are_clear_404s(acme, api):
    for url in (f"/api/admin/tenants/{acme.pk}/chats/not-a-chat/pause", "/api/admin/tenants/999999/chats/4917000000001/pause"):
        response = api.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_the_portal_sees_and_ends_its_own_pauses(acme):
    owner = portal(OWNER)
    url = f"/api/portal/tenant/current/chats/{CHAT}/pause"
    assert owner.get(url).json()["paused"] is True
    assert [p["chat"] for p in owner.get("/api/portal/tenant/current/chats/paused").json()["results"]] == [CHAT]
    assert owner.delete(url).json()["paused"] is False
    assert not ChatPause.objects.filter(tenant=acme).exists()


def test_a_member_of_another_tenant_neither_sees_nor_ends_this_ones_pauses(acme, globex):
    outsider = portal(OUTSIDER)
    url = f"/api/portal/tenant/current/chats/{CHAT}/pause"
    assert outsider.get(url).json()["paused"] is False
    assert outsider.get("/api/portal/tenant/current/chats/paused").json()["count"] == 0
    outsider.delete(url)
    assert ChatPause.objects.filter(tenant=acme, chat=CHAT).exists(), "the outsider ended their own chat only"


def test_a_portal_user_without_a_tenant_gets_404_and_without_the_key_401(acme):
    assert portal("nobody@example.com").get("/api/portal/tenant/current/chats/paused").status_code == 404
    assert APIClient().get("/api/portal/tenant/current/chats/paused").status_code == 401


def test_the_tenant_api_takes_the_message_policy(api, make_tenant):
    created = api.post("/api/admin/tenants", {"name": "Policy Co", "reply_in_groups": True}, format="json").json()
    assert (created["reply_in_groups"], created["reply_to_media"]) == (True, True)
    changed = api.patch(f"/api/admin/tenants/{created['id']}", {"reply_to_media": False}, format="json").json()
    assert (changed["reply_in_groups"], changed["reply_to_media"]) == (True, False)
    assert api.patch(f"/api/admin/tenants/{created['id']}", {"reply_in_groups": "maybe"}, format="json").status_code == 400
    detail = api.get(f"/api/admin/tenants/{created['id']}").json()
    assert set(detail["session"]) >= {"state", "phone", "last_error", "wa_version"}
