from __future__ import annotations

from rest_framework import serializers

from flowhq.api.serializers import InputSerializer
from tenants.models import PortalMembership, Tenant, WhatsAppSession


class SessionOut(serializers.ModelSerializer):
    class Meta:
        model = WhatsAppSession
        fields = ["state", "phone", "qr_issued_at", "last_seen_at", "last_error", "wa_state", "updated_at"]


class TenantOut(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id", "name", "slug", "status", "status_reason", "rate_limit_per_minute",
            "created_at", "updated_at",
        ]


class TenantCreateIn(InputSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True)


class TenantUpdateIn(InputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    slug = serializers.SlugField(max_length=80, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True)


class MemberOut(serializers.ModelSerializer):
    tenant = serializers.IntegerField(source="tenant_id", read_only=True)

    class Meta:
        model = PortalMembership
        fields = ["id", "email", "tenant", "created_at"]


class MemberIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
