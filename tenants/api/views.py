"""Control-plane API for tenants and their portal members (staff only)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from flowhq.api.serializers import validated
from tenants import selectors, services
from tenants.api.serializers import (
    MemberIn,
    MemberOut,
    MessageLogFilterIn,
    MessageLogOut,
    QrOut,
    TenantCreateIn,
    TenantDetailOut,
    TenantFilterIn,
    TenantOut,
    TenantUpdateIn,
)
from tenants.models import Tenant, WhatsAppSession

TAGS = ["admin"]


def paginated(
    request: Request, view: APIView, queryset: QuerySet[Any], serializer_class: type[BaseSerializer[Any]]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class TenantListCreate(APIView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="List tenants", responses=TenantOut(many=True), parameters=[TenantFilterIn])
    def get(self, request: Request) -> Response:
        filters = TenantFilterIn(data=request.query_params)
        filters.is_valid(raise_exception=True)  # an unknown status is a 400, not an empty list (or a 500)
        tenants = selectors.tenant_list()
        if filters.validated_data.get("status"):
            tenants = tenants.filter(status=filters.validated_data["status"])
        return paginated(request, self, tenants, TenantOut)

    @extend_schema(tags=TAGS, summary="Create a tenant", request=TenantCreateIn, responses={201: TenantOut})
    def post(self, request: Request) -> Response:
        data = validated(TenantCreateIn, request.data)
        tenant = services.tenant_create(**data)
        return Response(TenantOut(tenant).data, status=status.HTTP_201_CREATED)


class TenantDetail(APIView):
    @extend_schema(tags=TAGS, summary="A tenant, with its WhatsApp session", responses=TenantDetailOut)
    def get(self, request: Request, tenant_id: int) -> Response:
        return Response(TenantDetailOut(selectors.tenant_get(tenant_id=tenant_id)).data)

    @extend_schema(tags=TAGS, summary="Change a tenant", request=TenantUpdateIn, responses=TenantOut)
    def patch(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        data = validated(TenantUpdateIn, request.data)
        tenant = services.tenant_update(tenant=tenant, **data)
        return Response(TenantOut(tenant).data)

    @extend_schema(tags=TAGS, summary="Delete a tenant (its worker must be stopped)", responses={204: None})
    def delete(self, request: Request, tenant_id: int) -> Response:
        services.tenant_delete(tenant=selectors.tenant_get(tenant_id=tenant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListCreate(APIView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="The tenant's portal members", responses=MemberOut(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return paginated(request, self, selectors.member_list(tenant=tenant), MemberOut)

    @extend_schema(
        tags=TAGS, summary="Link a portal user (by email) to the tenant, with what they may change; idempotent",
        request=MemberIn,
        responses={201: OpenApiResponse(MemberOut, description="Linked."),
                   200: OpenApiResponse(MemberOut, description="Already linked.")},
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        data = validated(MemberIn, request.data)
        membership, created = services.membership_add(tenant=tenant, email=data["email"])
        if "can_edit_templates" in data:
            services.membership_grant(membership=membership, can_edit_templates=data["can_edit_templates"])
        return Response(
            MemberOut(membership).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MemberDelete(APIView):
    @extend_schema(tags=TAGS, summary="Unlink a portal user from the tenant", responses={204: None})
    def delete(self, request: Request, tenant_id: int, email: str) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        services.membership_remove(tenant=tenant, email=email)
        return Response(status=status.HTTP_204_NO_CONTENT)


def message_log_page(request: Request, view: APIView, *, tenant_id: int) -> Response:
    """One page of a tenant's message log, filtered by `?chat=`, `?direction=`, `?status=`."""
    filters = MessageLogFilterIn(data=request.query_params)
    filters.is_valid(raise_exception=True)
    logs = selectors.message_log_list(tenant_id=tenant_id, **filters.validated_data)
    return paginated(request, view, logs, MessageLogOut)


def session_of(tenant: Tenant) -> WhatsAppSession:
    """The tenant's session; a blank NEW one if it has none (never saved)."""
    return getattr(tenant, "session", None) or WhatsAppSession(tenant=tenant)


class TenantQr(APIView):
    @extend_schema(tags=TAGS, summary="The tenant's QR code (a PNG data URI) or null", responses=QrOut)
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return Response(QrOut(session_of(tenant)).data)


class TenantLogs(APIView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="The tenant's message log, newest first",
                   parameters=[MessageLogFilterIn], responses=MessageLogOut(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return message_log_page(request, self, tenant_id=tenant.pk)
