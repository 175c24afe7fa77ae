"""Control-plane API for a tenant's reply templates (staff only).

Every change reaches the tenant's running bot through its queue, without a restart.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from flowhq.api.serializers import validated
from flowhq.errors import NotFound
from tenants import selectors, services
from tenants.api.serializers import TemplateCreateIn, TemplateOut, TemplateUpdateIn
from tenants.api.views import paginated
from tenants.models import ReplyTemplate

TAGS = ["admin: templates"]


def _template(tenant_id: int, template_id: int) -> ReplyTemplate:
    tenant = selectors.tenant_get(tenant_id=tenant_id)
    try:
        return selectors.template_list(tenant_id=tenant.pk).get(pk=template_id)
    except ReplyTemplate.DoesNotExist:
        raise NotFound(f"Tenant {tenant_id} has no template {template_id}.") from None


class TemplateListCreate(APIView):
    pagination_class = Pagination

    @extend_schema(tags=TAGS, summary="List a tenant's reply templates", responses=TemplateOut(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return paginated(request, self, selectors.template_list(tenant_id=tenant.pk), TemplateOut)

    @extend_schema(tags=TAGS, summary="Add a reply template", request=TemplateCreateIn, responses={201: TemplateOut})
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        template = services.template_create(tenant=tenant, **validated(TemplateCreateIn, request.data))
        return Response(TemplateOut(template).data, status=status.HTTP_201_CREATED)


class TemplateDetail(APIView):
    @extend_schema(tags=TAGS, summary="Get a reply template", responses=TemplateOut)
    def get(self, request: Request, tenant_id: int, template_id: int) -> Response:
        return Response(TemplateOut(_template(tenant_id, template_id)).data)

    @extend_schema(tags=TAGS, summary="Change a reply template", request=TemplateUpdateIn, responses=TemplateOut)
    def patch(self, request: Request, tenant_id: int, template_id: int) -> Response:
        template = _template(tenant_id, template_id)
        template = services.template_update(template=template, **validated(TemplateUpdateIn, request.data))
        return Response(TemplateOut(template).data)

    @extend_schema(tags=TAGS, summary="Delete a reply template", responses={204: None})
    def delete(self, request: Request, tenant_id: int, template_id: int) -> Response:
        services.template_delete(template=_template(tenant_id, template_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
