"""Control-plane API for tenants and their portal members (staff only)."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from flowhq.api.serializers import validated
from tenants import selectors, services
from tenants.api.serializers import MemberIn, MemberOut, TenantCreateIn, TenantOut, TenantUpdateIn


def paginated(
    request: Request, view: APIView, queryset: QuerySet, serializer_class: type[BaseSerializer]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class TenantListCreate(APIView):
    def get(self, request: Request) -> Response:
        tenants = selectors.tenant_list()
        if request.query_params.get("status"):
            tenants = tenants.filter(status=request.query_params["status"])
        return paginated(request, self, tenants, TenantOut)

    def post(self, request: Request) -> Response:
        data = validated(TenantCreateIn, request.data)
        tenant = services.tenant_create(**data)
        return Response(TenantOut(tenant).data, status=status.HTTP_201_CREATED)


class TenantDetail(APIView):
    def get(self, request: Request, tenant_id: int) -> Response:
        return Response(TenantOut(selectors.tenant_get(tenant_id=tenant_id)).data)

    def patch(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        data = validated(TenantUpdateIn, request.data)
        tenant = services.tenant_update(tenant=tenant, **data)
        return Response(TenantOut(tenant).data)

    def delete(self, request: Request, tenant_id: int) -> Response:
        services.tenant_delete(tenant=selectors.tenant_get(tenant_id=tenant_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListCreate(APIView):
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return paginated(request, self, selectors.member_list(tenant=tenant), MemberOut)

    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        data = validated(MemberIn, request.data)
        membership, created = services.membership_add(tenant=tenant, email=data["email"])
        return Response(
            MemberOut(membership).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class MemberDelete(APIView):
    def delete(self, request: Request, tenant_id: int, email: str) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        services.membership_remove(tenant=tenant, email=email)
        return Response(status=status.HTTP_204_NO_CONTENT)
