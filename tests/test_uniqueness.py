"""The uniqueness rules the data model promises."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from flowhq.errors import Conflict
from tenants import services
from tenants.models import (
    Direction,
    MessageLog,
    MessageStatus,
    PortalMembership,
    SetupRequest,
    WhatsAppSession,
)
from workers.models import WorkerProcess


def log(tenant, message_id: str, direction: str) -> MessageLog:
    return MessageLog.objects.create(
        tenant=tenant, message_id=message_id, chat="c1", direction=direction, status=MessageStatus.RECEIVED
    )


def test_a_message_is_logged_once_per_direction(tenant):
    log(tenant, "wamid.1", Direction.IN)
    log(tenant, "wamid.1", Direction.OUT)
    with pytest.raises(IntegrityError), transaction.atomic():
        log(tenant, "wamid.1", Direction.IN)


def test_the_same_message_id_may_exist_for_two_tenants(make_tenant):
    log(make_tenant("A"), "wamid.1", Direction.IN)
    log(make_tenant("B"), "wamid.1", Direction.IN)
    assert MessageLog.objects.count() == 2


def test_each_tenant_has_exactly_one_session_and_one_worker(tenant):
    assert WhatsAppSession.objects.filter(tenant=tenant).count() == 1
    assert WorkerProcess.objects.filter(tenant=tenant).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkerProcess.objects.create(tenant=tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppSession.objects.create(tenant=tenant)


def test_slugs_are_unique_and_chosen_automatically(make_tenant):
    assert [make_tenant("Acme Bakery").slug for _ in range(3)] == ["acme-bakery", "acme-bakery-2", "acme-bakery-3"]
    with pytest.raises(Conflict):
        make_tenant("Other", slug="acme-bakery")


def test_a_user_email_belongs_to_one_tenant_whatever_its_case(make_tenant):
    first, second = make_tenant("A"), make_tenant("B")
    services.membership_add(tenant=first, email="Owner@Example.com")
    _, created = services.membership_add(tenant=first, email="owner@example.com")
    assert not created
    with pytest.raises(Conflict):
        services.membership_add(tenant=second, email="OWNER@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalMembership.objects.create(tenant=second, email="owner@EXAMPLE.com")


def test_one_pending_setup_request_per_email(db):
    services.setup_request_submit(email="a@example.com", business_name="A", phone="1")
    with pytest.raises(Conflict):
        services.setup_request_submit(email="A@example.com", business_name="A again", phone="1")
    assert SetupRequest.objects.count() == 1
