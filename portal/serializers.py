from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from flowhq.api.serializers import InputSerializer
from tenants.api.serializers import SessionOut, SetupRequestOut, TenantOut
from tenants.models import SetupRequest, Tenant
from workers.api.serializers import WorkerOut

_PHONE_CHARS = re.compile(r"^\+?[0-9 ().-]+$")


class PortalStatusOut(serializers.Serializer[Any]):
    """What the portal's dashboard shows: the tenant, its WhatsApp session and worker, and the request."""

    tenant = TenantOut()
    session = SessionOut(allow_null=True)
    worker = WorkerOut(allow_null=True)
    # camelCase: the name in DESIGN.md's contract.
    setupRequest = SetupRequestOut(allow_null=True, help_text="The user's latest setup request, if any.")


class StrictCharField(serializers.CharField):
    """A string, and only a string: `12345` is refused, not turned into `"12345"`."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SetupRequestIn(InputSerializer):
    business_name = StrictCharField(max_length=200)
    phone = StrictCharField(
        max_length=32, help_text="The WhatsApp number to link, digits with an optional leading +."
    )

    def validate_business_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate_phone(self, value: str) -> str:
        value = value.strip()
        digits = re.sub(r"\D", "", value)
        if not _PHONE_CHARS.match(value) or not 6 <= len(digits) <= 20:
            raise serializers.ValidationError("Enter a phone number: 6 to 20 digits, optionally with a leading +.")
        return ("+" if value.startswith("+") else "") + digits


def status_data(*, tenant: Tenant, setup_request: SetupRequest | None) -> dict[str, Any]:
    """The body of `GET /status` (and of the `status` event)."""
    return PortalStatusOut(
        {
            "tenant": tenant,
            "session": getattr(tenant, "session", None),
            "worker": getattr(tenant, "worker", None),
            "setupRequest": setup_request,
        }
    ).data
