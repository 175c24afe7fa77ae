"""Portal API: the tenant's own webhook endpoints (the same operations as the control plane's)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from flowhq.api.pagination import Pagination
from portal.views import PortalView
from webhooks.api import operations as ops
from webhooks.api.operations import SECRET_NOTE
from webhooks.api.serializers import (
    DeliveryOut,
    EndpointCreateIn,
    EndpointOut,
    EndpointUpdateIn,
    EndpointWithSecretOut,
)

TAGS = ["portal: webhooks"]


class PortalWebhooks(PortalView):
    pagination_class = Pagination

    @extend_schema(tags=TAGS, summary="The tenant's webhook endpoints", responses=EndpointOut(many=True))
    def get(self, request: Request) -> Response:
        return ops.endpoints_page(request, self, self.current_tenant())

    @extend_schema(tags=TAGS, summary="Add a webhook endpoint to the tenant",
                   description="The URL must resolve to a public address. " + SECRET_NOTE,
                   request=EndpointCreateIn, responses={201: EndpointWithSecretOut})
    def post(self, request: Request) -> Response:
        return ops.create(request, self.current_tenant())


class PortalWebhook(PortalView):
    @extend_schema(tags=TAGS, summary="One of the tenant's webhook endpoints", responses=EndpointOut)
    def get(self, request: Request, endpoint_id: int) -> Response:
        return ops.read(self.current_tenant(), endpoint_id)

    @extend_schema(tags=TAGS, summary="Change one of the tenant's webhook endpoints", request=EndpointUpdateIn,
                   responses=EndpointOut)
    def patch(self, request: Request, endpoint_id: int) -> Response:
        return ops.update(request, self.current_tenant(), endpoint_id)

    @extend_schema(tags=TAGS, summary="Delete one of the tenant's webhook endpoints", responses={204: None})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        return ops.delete(self.current_tenant(), endpoint_id)


class PortalWebhookRotate(PortalView):
    @extend_schema(tags=TAGS, summary="Rotate the secret of one of the tenant's webhook endpoints",
                   description="The previous secret keeps signing during the overlap. " + SECRET_NOTE,
                   request=None, responses=EndpointWithSecretOut)
    def post(self, request: Request, endpoint_id: int) -> Response:
        return ops.rotate(self.current_tenant(), endpoint_id)


class PortalWebhookTest(PortalView):
    @extend_schema(tags=TAGS, summary="Send a test event to one of the tenant's webhook endpoints",
                   request=None, responses={202: DeliveryOut})
    def post(self, request: Request, endpoint_id: int) -> Response:
        return ops.test(self.current_tenant(), endpoint_id)


class PortalWebhookDeliveries(PortalView):
    pagination_class = Pagination

    @extend_schema(tags=TAGS, summary="The deliveries of one of the tenant's webhook endpoints, newest first",
                   responses=DeliveryOut(many=True))
    def get(self, request: Request, endpoint_id: int) -> Response:
        return ops.deliveries_page(request, self, self.current_tenant(), endpoint_id)
