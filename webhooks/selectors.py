"""Reads of webhook endpoints and deliveries."""

from __future__ import annotations

from django.db.models import QuerySet

from flowhq.errors import NotFound
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def backlog_count() -> int:
    """Deliveries not yet delivered nor given up (for metrics)."""
    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()


def endpoints_wanting(*, tenant_id: int, event_type: str) -> list[WebhookEndpoint]:
    """The tenant's enabled endpoints that want `event_type`: one indexed query (tenant, enabled)."""
    rows = WebhookEndpoint.objects.filter(tenant_id=tenant_id, enabled=True).only("id", "events")
    return [endpoint for endpoint in rows if endpoint.wants(event_type)]


def endpoint_list(*, tenant_id: int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant_id=tenant_id).order_by("id")


def endpoint_get(*, tenant_id: int, endpoint_id: int) -> WebhookEndpoint:
    try:
        return endpoint_list(tenant_id=tenant_id).get(pk=endpoint_id)
    except WebhookEndpoint.DoesNotExist:
        raise NotFound(f"Tenant {tenant_id} has no webhook endpoint {endpoint_id}.") from None


def delivery_list(*, endpoint_id: int) -> QuerySet[WebhookDelivery]:
    """An endpoint's deliveries, newest first, with their events."""
    return WebhookDelivery.objects.filter(endpoint_id=endpoint_id).select_related("event").order_by("-id")
