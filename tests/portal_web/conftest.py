from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants import services
from tenants.models import PortalMembership, Tenant

PASSWORD = "a-long-portal-pass-9"


def member(tenant: Tenant, email: str, *, can_edit_templates: bool = False) -> Any:
    """A portal member of `tenant` with an account and PASSWORD."""
    membership, _ = services.membership_add(tenant=tenant, email=email)
    if can_edit_templates:
        PortalMembership.objects.filter(pk=membership.pk).update(can_edit_templates=True)
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    return user


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme(db) -> Tenant:
    return services.tenant_create(name="Acme")


@pytest.fixture
def globex(db) -> Tenant:
    return services.tenant_create(name="Globex")


@pytest.fixture
def alice(acme) -> Any:
    return member(acme, "alice@acme.example")


@pytest.fixture
def outsider(globex) -> Any:
    """A member of another tenant: must see nothing of Acme."""
    return member(globex, "olga@globex.example")


@pytest.fixture(autouse=True)
def _reset_requests_unthrottled(settings) -> None:
    """Reset requests are counted in Redis across tests; the throttle's own test sets its rate."""
    settings.PORTAL_RESET_RATE = "100000/hour"
