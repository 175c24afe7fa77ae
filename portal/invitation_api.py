"""Control-plane API (staff): invite a portal member by email (portal/invitations.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.serializers import InputSerializer, validated
from portal.invitations import invitation_send
from tenants.selectors import tenant_get

TAGS = ["admin"]


class InvitationIn(InputSerializer):
    email = serializers.EmailField(max_length=254)


class InvitationOut(serializers.Serializer[Any]):
    email = serializers.EmailField(read_only=True)
    tenant = serializers.IntegerField(source="tenant_id", read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, help_text="When the link in the email stops working.")
    account_created = serializers.BooleanField(
        read_only=True, help_text="True if the address had no account yet (it gets one without a password)."
    )


class InvitationCreate(APIView):
    @extend_schema(
        tags=TAGS, request=InvitationIn,
        responses={202: InvitationOut,
                   503: OpenApiResponse(description="The mail server did not take the message (`email_failed`).")},
        summary="Invite a portal member: link the email to the tenant and email a link to choose a password",
        description=(
            "Makes the address a member of the tenant (as `POST …/members` does; 409 if it is a member "
            "of another tenant), gives it a portal account without a password if it has none, and "
            "emails it a sign-in link valid for PORTAL_INVITATION_DAYS that works once. Sending again "
            "sends a new link. Staff accounts are refused (409 `staff_account`): they use the admin. "
            "503 `email_failed` if the mail server does not take the message."
        ),
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        data = validated(InvitationIn, request.data)
        invitation = invitation_send(tenant=tenant, email=data["email"], base_url=request.build_absolute_uri("/"),
                                     invited_by=str(request.user))
        return Response(InvitationOut(invitation).data, status=status.HTTP_202_ACCEPTED)
