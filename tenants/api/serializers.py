from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flowhq.api.serializers import InputSerializer
from tenants.models import (
    Direction,
    MatchKind,
    MessageLog,
    MessageSource,
    MessageStatus,
    PortalMembership,
    ReplyTemplate,
    SetupRequest,
    Tenant,
    WhatsAppSession,
)
from tenants.states import SessionState, TenantStatus


class SessionOut(serializers.ModelSerializer[WhatsAppSession]):
    class Meta:
        model = WhatsAppSession
        fields = ["state", "phone", "qr_issued_at", "last_seen_at", "last_error", "wa_state", "wa_version",
                  "updated_at"]


class TenantOut(serializers.ModelSerializer[Tenant]):
    """A tenant, with its session state and linked number: whether it is linked, without a call to /qr."""

    session_state = serializers.SerializerMethodField(help_text="The WhatsApp session's state (NEW for none).")
    phone = serializers.SerializerMethodField(help_text="The linked phone number; empty when not linked.")

    class Meta:
        model = Tenant
        fields = [
            "id", "name", "slug", "status", "status_reason", "session_state", "phone", "rate_limit_per_minute",
            "reply_in_groups", "reply_to_media", "created_at", "updated_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=SessionState.choices))
    def get_session_state(self, tenant: Tenant) -> str:
        session = getattr(tenant, "session", None)
        return session.state if session is not None else SessionState.NEW

    def get_phone(self, tenant: Tenant) -> str:
        session = getattr(tenant, "session", None)
        if session is None or session.state not in (SessionState.CONNECTED, SessionState.DISCONNECTED):
            return ""
        return str(session.phone)


class TenantDetailOut(TenantOut):
    """A tenant with its WhatsApp session (state, linked number, WhatsApp Web version, last error)."""

    session = SessionOut(read_only=True, allow_null=True)

    class Meta(TenantOut.Meta):
        fields = [*TenantOut.Meta.fields, "session"]


class TenantCreateIn(InputSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True)
    reply_in_groups = serializers.BooleanField(required=False, help_text="Answer in groups too [false].")
    reply_to_media = serializers.BooleanField(required=False, help_text="Answer media by its caption [true].")


class TenantUpdateIn(InputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    slug = serializers.SlugField(max_length=80, required=False)
    rate_limit_per_minute = serializers.IntegerField(min_value=1, max_value=10000, required=False, allow_null=True)
    reply_in_groups = serializers.BooleanField(required=False, help_text="Answer in groups too.")
    reply_to_media = serializers.BooleanField(required=False, help_text="Answer media by its caption.")


class MemberOut(serializers.ModelSerializer[PortalMembership]):
    tenant = serializers.IntegerField(source="tenant_id", read_only=True)

    class Meta:
        model = PortalMembership
        fields = ["id", "email", "tenant", "can_edit_templates", "created_at"]


class MemberIn(InputSerializer):
    email = serializers.EmailField(max_length=254)
    can_edit_templates = serializers.BooleanField(
        required=False, help_text="May the member change the reply templates in the portal? Unset: unchanged "
        "(false for a new member).",
    )


class QrOut(serializers.Serializer[Any]):
    """`{state, qr, qr_issued_at}` of a session: qr is a PNG data URI, or null unless QR_READY."""

    state = serializers.ChoiceField(choices=SessionState.choices, read_only=True)
    qr = serializers.SerializerMethodField()
    qr_issued_at = serializers.SerializerMethodField()

    @extend_schema_field(
        {"type": "string", "nullable": True, "pattern": "^data:image/png;base64,", "readOnly": True}
    )
    def get_qr(self, session: WhatsAppSession) -> str | None:
        return session.qr if session.state == SessionState.QR_READY and session.qr else None

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True, "readOnly": True})
    def get_qr_issued_at(self, session: WhatsAppSession) -> str | None:
        if self.get_qr(session) is None or session.qr_issued_at is None:
            return None
        return serializers.DateTimeField().to_representation(session.qr_issued_at)


class MessageLogOut(serializers.ModelSerializer[MessageLog]):
    class Meta:
        model = MessageLog
        fields = [
            "id", "message_id", "chat", "direction", "body", "status", "created_at", "source", "kind", "author",
            "in_reply_to", "updated_at", "completed_at", "latency_ms", "error",
        ]


class MessageLogFilterIn(serializers.Serializer[Any]):
    """Query filters of a message log; an empty value means "any"."""

    chat = serializers.CharField(max_length=128, required=False, allow_blank=True, help_text="Exact chat id")
    direction = serializers.ChoiceField(choices=Direction.choices, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False, allow_blank=True)
    # A field called `source` shadows Field.source for mypy only: DRF moves declared fields off the class.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=MessageSource.choices, required=False, allow_blank=True,
        help_text="Who wrote it: customer, bot, api or phone",
    )


class ChatPauseOut(serializers.Serializer[Any]):
    """A chat's human-takeover pause: the bot keeps quiet there until `paused_until` (null: not paused)."""

    chat = serializers.CharField(read_only=True)
    paused = serializers.BooleanField(read_only=True)
    paused_until = serializers.DateTimeField(read_only=True, allow_null=True)
    reason = serializers.CharField(read_only=True, allow_blank=True)


class SetupRequestOut(serializers.ModelSerializer[SetupRequest]):
    tenant = serializers.IntegerField(source="tenant_id", read_only=True, allow_null=True)

    class Meta:
        model = SetupRequest
        fields = [
            "id", "email", "business_name", "phone", "state", "tenant", "note", "decided_at",
            "created_at", "updated_at",
        ]


class TemplateOut(serializers.ModelSerializer[ReplyTemplate]):
    class Meta:
        model = ReplyTemplate
        fields = ["id", "match", "pattern", "body", "priority", "enabled", "created_at", "updated_at"]


class TemplateCreateIn(InputSerializer):
    match = serializers.ChoiceField(choices=MatchKind.choices)
    pattern = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    body = serializers.CharField(max_length=4096)
    priority = serializers.IntegerField(min_value=-1000, max_value=1000, required=False, default=0)
    enabled = serializers.BooleanField(required=False, default=True)


class TemplateUpdateIn(InputSerializer):
    match = serializers.ChoiceField(choices=MatchKind.choices, required=False)
    pattern = serializers.CharField(max_length=500, required=False, allow_blank=True)
    body = serializers.CharField(max_length=4096, required=False)
    priority = serializers.IntegerField(min_value=-1000, max_value=1000, required=False)
    enabled = serializers.BooleanField(required=False)


class SendMessageIn(InputSerializer):
    to = serializers.CharField(max_length=40)
    body = serializers.CharField(max_length=4096)


class TenantFilterIn(serializers.Serializer[Any]):
    status = serializers.ChoiceField(
        choices=TenantStatus.choices, required=False, allow_blank=True, help_text="Only tenants in this status"
    )
