"""Control-plane API for a tenant's webhook endpoints (staff). The portal calls the same operations."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from tenants import selectors as tenant_selectors
from tenants.models import Tenant
from webhooks.api import operations as ops
from webhooks.api.operations import SECRET_NOTE
from webhooks.api.serializers import (
    DeliveryOut,
    EndpointCreateIn,
    EndpointOut,
    EndpointUpdateIn,
    EndpointWithSecretOut,
)

TAGS = ["admin: webhooks"]


def _tenant(tenant_id: int) -> Tenant:
    return tenant_selectors.tenant_get(tenant_id=tenant_id)


class EndpointListCreate(APIView):
    pagination_class = Pagination

    @extend_schema(tags=TAGS, summary="List a tenant's webhook endpoints",
                   description="Secrets are never listed.", responses=EndpointOut(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        return ops.endpoints_page(request, self, _tenant(tenant_id))

    @extend_schema(tags=TAGS, summary="Add a webhook endpoint",
                   description="The URL must be http(s) and resolve to a public address (unless "
                               "WEBHOOK_ALLOW_PRIVATE); a refused URL is a 400 `webhook_url_refused`. " + SECRET_NOTE,
                   request=EndpointCreateIn, responses={201: EndpointWithSecretOut})
    def post(self, request: Request, tenant_id: int) -> Response:
        return ops.create(request, _tenant(tenant_id))


class EndpointDetail(APIView):
    @extend_schema(tags=TAGS, summary="Get a webhook endpoint", description="Without its secret.",
                   responses=EndpointOut)
    def get(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.read(_tenant(tenant_id), endpoint_id)

    @extend_schema(tags=TAGS, summary="Change a webhook endpoint",
                   description="Disabling it fails its pending deliveries; enabling it clears the disabled "
                               "reason.", request=EndpointUpdateIn, responses=EndpointOut)
    def patch(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.update(request, _tenant(tenant_id), endpoint_id)

    @extend_schema(tags=TAGS, summary="Delete a webhook endpoint and its deliveries", responses={204: None})
    def delete(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.delete(_tenant(tenant_id), endpoint_id)


class EndpointRotateSecret(APIView):
    @extend_schema(tags=TAGS, summary="Rotate a webhook endpoint's secret",
                   description="Until `secret_rotating_until` every delivery carries two signatures, by the "
                               "new and the previous secret, so a receiver can switch without losing events. "
                               + SECRET_NOTE, request=None, responses=EndpointWithSecretOut)
    def post(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.rotate(_tenant(tenant_id), endpoint_id)


class EndpointTest(APIView):
    @extend_schema(tags=TAGS, summary="Send a test event (`webhook.test`) to a webhook endpoint",
                   description="Queued for delivery like any event; follow it in the deliveries.",
                   request=None, responses={202: DeliveryOut})
    def post(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.test(_tenant(tenant_id), endpoint_id)


class EndpointDeliveries(APIView):
    pagination_class = Pagination

    @extend_schema(tags=TAGS, summary="A webhook endpoint's deliveries, newest first",
                   description="Status, attempts, the last answer (status code, latency, error), next try.",
                   responses=DeliveryOut(many=True))
    def get(self, request: Request, tenant_id: int, endpoint_id: int) -> Response:
        return ops.deliveries_page(request, self, _tenant(tenant_id), endpoint_id)
