"""Templates and send through the control-plane API: validation is a clear 400, changes reach the bot."""

from __future__ import annotations

import json

from tenants import selectors, services
from tenants.models import ReplyTemplate


def queued_commands(redis_client, tenant_id: int) -> list[str]:
    """Task names waiting on the tenant's queue (kombu keeps a Redis list per queue)."""
    return [json.loads(raw)["headers"]["task"] for raw in redis_client.lrange(f"tenant.{tenant_id}", 0, -1)]


def test_templates_are_created_listed_changed_and_deleted(api, tenant, redis_client, transactional_db):
    url = f"/api/admin/tenants/{tenant.pk}/templates"
    redis_client.delete(f"tenant.{tenant.pk}")
    created = api.post(url, {"match": "regex", "pattern": r"order\s+(\d+)", "body": "Looking up {name}"},
                       format="json")
    assert created.status_code == 201
    body = created.json()
    assert {"id", "match", "pattern", "body", "priority", "enabled"} <= set(body)
    assert api.get(url).json()["count"] == 1
    changed = api.patch(f"{url}/{body['id']}", {"enabled": False}, format="json")
    assert changed.json()["enabled"] is False
    assert api.delete(f"{url}/{body['id']}").status_code == 204
    assert not ReplyTemplate.objects.exists()
    assert queued_commands(redis_client, tenant.pk) == ["bot.reload_templates"] * 3, (
        "every change reaches the running bot through its queue")


def test_changes_in_one_transaction_reload_the_bot_once(tenant, redis_client, transactional_db):
    from django.db import transaction

    from tenants import services

    redis_client.delete(f"tenant.{tenant.pk}")
    with transaction.atomic():
        for n in range(5):
            services.template_create(tenant=tenant, match="keyword", pattern=f"word{n}", body="x")
    assert queued_commands(redis_client, tenant.pk) == ["bot.reload_templates"]


def test_an_invalid_or_slow_regex_is_a_400_naming_the_field(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/templates"
    for pattern in ("(unclosed", r"(a+)+$"):
        response = api.post(url, {"match": "regex", "pattern": pattern, "body": "x"}, format="json")
        assert response.status_code == 400
        assert "pattern" in response.json()["error"]["details"]
    response = api.post(url, {"match": "fuzzy", "pattern": "x", "body": "x"}, format="json")
    assert response.status_code == 400
    assert not ReplyTemplate.objects.exists()


def test_a_patch_that_would_make_a_template_invalid_is_refused(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/templates"
    template_id = api.post(url, {"match": "keyword", "pattern": "hi", "body": "hello"}, format="json").json()["id"]
    response = api.patch(f"{url}/{template_id}", {"pattern": ""}, format="json")
    assert response.status_code == 400
    assert ReplyTemplate.objects.get(pk=template_id).pattern == "hi"


def test_templates_of_another_tenant_are_not_found(api, make_tenant):
    owner, other = make_tenant("A"), make_tenant("B")
    template_id = api.post(f"/api/admin/tenants/{owner.pk}/templates",
                           {"match": "default", "body": "x"}, format="json").json()["id"]
    assert api.get(f"/api/admin/tenants/{other.pk}/templates/{template_id}").status_code == 404


def test_send_validates_its_input(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/messages"
    assert api.post(url, {"to": "abc", "body": "x"}, format="json").status_code == 400
    assert api.post(url, {"to": "4917000000001"}, format="json").status_code == 400
    assert api.post(url, {"to": "4917000000001", "body": "x", "extra": 1}, format="json").status_code == 400
    assert api.post("/api/admin/tenants/999999/messages", {"to": "4917000000001", "body": "x"},
                    format="json").status_code == 404


def test_the_template_version_moves_with_every_change_and_only_for_its_tenant(tenant, make_tenant):
    """What a running bot compares to find a change whose reload nudge was lost."""
    other = make_tenant("Other")
    seen = [selectors.template_version(tenant_id=tenant.pk)]
    first = services.template_create(tenant=tenant, match="keyword", pattern="price", body="5")
    seen.append(selectors.template_version(tenant_id=tenant.pk))
    second = services.template_create(tenant=tenant, match="default", body="hi")
    seen.append(selectors.template_version(tenant_id=tenant.pk))
    services.template_update(template=first, body="6")
    seen.append(selectors.template_version(tenant_id=tenant.pk))
    services.template_delete(template=second)
    seen.append(selectors.template_version(tenant_id=tenant.pk))
    services.tenant_update(tenant=tenant, rate_limit_per_minute=7)
    seen.append(selectors.template_version(tenant_id=tenant.pk))
    assert len(set(seen)) == len(seen), seen

    before = selectors.template_version(tenant_id=tenant.pk)
    services.template_create(tenant=other, match="default", body="elsewhere")
    assert selectors.template_version(tenant_id=tenant.pk) == before
    assert selectors.template_version(tenant_id=10**9) == (None, 0, None)


def test_a_template_that_could_build_a_gigabyte_or_stall_the_bot_is_a_400(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/templates"
    for body in ("Hi {name:>999999999}", "{name:>{number}}", "{name:{name.__class__}}"):
        response = api.post(url, {"match": "default", "body": body}, format="json")
        assert response.status_code == 400, body
        assert "names only" in response.json()["error"]["details"]["body"][0]
    for pattern in (r"(\d+)+$", r"^(\d|\d\d)+$"):
        response = api.post(url, {"match": "regex", "pattern": pattern, "body": "x"}, format="json")
        assert response.status_code == 400, pattern
        assert "slow" in response.json()["error"]["details"]["pattern"][0]
    response = api.post(url, {"match": "keyword", "pattern": ",,,", "body": "x"}, format="json")
    assert response.status_code == 400
    assert not ReplyTemplate.objects.exists()


def test_a_recipient_that_is_not_an_ascii_number_or_is_a_group_is_a_400(api, tenant):
    url = f"/api/admin/tenants/{tenant.pk}/messages"
    for to in ("٤٩١٧٦١٢٣٤٥٦٧٨", "４９１７６１２３４５６７８", "4917612345678@g.us", "120363000000000000@g.us",
               "4917612345678@example.com"):
        response = api.post(url, {"to": to, "body": "x"}, format="json")
        assert response.status_code == 400, to
        assert "to" in response.json()["error"]["details"]
    assert "groups" in api.post(url, {"to": "4917612345678@g.us", "body": "x"}, format="json").json()["error"]["message"]
    for to in ("4917612345678", "+4917612345678", "4917612345678@c.us"):
        assert api.post(url, {"to": to, "body": "x"}, format="json").status_code == 202, to
