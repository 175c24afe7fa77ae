from __future__ import annotations

from rest_framework import serializers

from flowhq.api.serializers import InputSerializer
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENTS_HELP = ("Event types: message.received, message.sent, message.failed, session.status, worker.status, "
               "chat.paused, chat.resumed, or \"*\" for all")


class EndpointOut(serializers.ModelSerializer[WebhookEndpoint]):
    """An endpoint, without its secret (shown only when it is created or rotated)."""

    secret_rotating_until = serializers.DateTimeField(source="previous_secret_expires_at", read_only=True,
                                                      allow_null=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "enabled", "disabled_reason", "failing_since",
                  "secret_rotating_until", "created_at", "updated_at"]


class EndpointWithSecretOut(EndpointOut):
    secret = serializers.CharField(read_only=True, help_text="whsec_… — shown once: store it now")

    class Meta(EndpointOut.Meta):
        fields = [*EndpointOut.Meta.fields, "secret"]


class EndpointCreateIn(InputSerializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=20,
                                   help_text=EVENTS_HELP)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointUpdateIn(InputSerializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=20,
                                   required=False, help_text=EVENTS_HELP)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class AttemptOut(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "status_code", "latency_ms", "error", "next_attempt_at"]


class DeliveryOut(serializers.ModelSerializer[WebhookDelivery]):
    event_id = serializers.CharField(source="event.event_id", read_only=True)
    type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "type", "status", "attempts", "next_attempt_at", "last_status_code",
                  "last_error", "last_latency_ms", "delivered_at", "created_at"]
