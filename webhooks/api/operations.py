"""The webhook endpoint operations, for a tenant already known: the control plane finds it by id,
the portal by the user's membership."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.serializers import validated
from tenants.api.views import paginated
from tenants.models import Tenant
from webhooks import selectors, services
from webhooks.api.serializers import (
    DeliveryOut,
    EndpointCreateIn,
    EndpointOut,
    EndpointUpdateIn,
    EndpointWithSecretOut,
)
from webhooks.models import WebhookEndpoint

SECRET_NOTE = "The answer holds the signing secret (`whsec_…`); it is never shown again."


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, object]:
    data = dict(EndpointWithSecretOut(endpoint).data)
    data["secret"] = secret
    return data


def endpoints_page(request: Request, view: APIView, tenant: Tenant) -> Response:
    return paginated(request, view, selectors.endpoint_list(tenant_id=tenant.pk), EndpointOut)


def create(request: Request, tenant: Tenant) -> Response:
    endpoint, secret = services.endpoint_create(tenant=tenant, **validated(EndpointCreateIn, request.data))
    return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


def read(tenant: Tenant, endpoint_id: int) -> Response:
    return Response(EndpointOut(selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id)).data)


def update(request: Request, tenant: Tenant, endpoint_id: int) -> Response:
    endpoint = selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id)
    endpoint = services.endpoint_update(endpoint=endpoint, **validated(EndpointUpdateIn, request.data))
    return Response(EndpointOut(endpoint).data)


def delete(tenant: Tenant, endpoint_id: int) -> Response:
    services.endpoint_delete(endpoint=selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id))
    return Response(status=status.HTTP_204_NO_CONTENT)


def rotate(tenant: Tenant, endpoint_id: int) -> Response:
    endpoint = selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id)
    endpoint, secret = services.endpoint_rotate_secret(endpoint=endpoint)
    return Response(_with_secret(endpoint, secret))


def test(tenant: Tenant, endpoint_id: int) -> Response:
    endpoint = selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id)
    delivery = services.test_event_send(endpoint=endpoint)
    return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


def deliveries_page(request: Request, view: APIView, tenant: Tenant, endpoint_id: int) -> Response:
    endpoint = selectors.endpoint_get(tenant_id=tenant.pk, endpoint_id=endpoint_id)
    return paginated(request, view, selectors.delivery_list(endpoint_id=endpoint.pk), DeliveryOut)
