"""The Django admin of webhooks: endpoints (add, change, rotate, test) and their deliveries (send again).

Endpoints are created and changed through the services, so the admin applies the API's rules
(URL safety, event names) and shows a new secret exactly once, in a message."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flowhq.admin_display import ReadOnly, ReadOnlyAdmin, StyledAdmin, adopt, badge, latest_formset
from flowhq.errors import FlowHQError
from webhooks import addresses, services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

LATEST = 20


class EndpointForm(forms.ModelForm[WebhookEndpoint]):
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "events", "description", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            addresses.resolve(url)
        except FlowHQError as exc:
            raise forms.ValidationError(exc.message) from None
        return url

    def clean_events(self) -> list[str]:
        try:
            return services._events_checked(self.cleaned_data["events"])
        except FlowHQError as exc:
            raise forms.ValidationError(exc.message) from None


class DeliveryInline(ReadOnly, admin.TabularInline[WebhookDelivery, WebhookEndpoint]):
    model = WebhookDelivery
    formset = latest_formset(LATEST)
    extra = 0
    max_num = 0
    fields = readonly_fields = ("created_at", "event", "status", "attempts", "last_status_code", "last_latency_ms",
                                "last_error", "next_attempt_at")
    show_change_link = True
    verbose_name_plural = f"latest {LATEST} deliveries"


def _show_secret(request: HttpRequest, endpoint: WebhookEndpoint, secret: str, what: str) -> None:
    messages.warning(request, format_html(
        "{} for {}: <code>{}</code> — copy it now, it is not shown again.", what, endpoint.url, secret))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(StyledAdmin[WebhookEndpoint]):
    form = EndpointForm
    list_display = ["url", "tenant", "enabled_badge", "events", "failing_since", "disabled_reason", "deliveries"]
    list_filter = ["enabled"]
    search_fields = ["url", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["disabled_reason", "failing_since", "previous_secret_expires_at", "created_at",
                       "updated_at", "deliveries"]
    inlines = [DeliveryInline]
    actions = ["send_test_event", "rotate_secret"]

    @admin.display(description="enabled", ordering="enabled")
    def enabled_badge(self, endpoint: WebhookEndpoint) -> SafeString:
        return badge("RUNNING" if endpoint.enabled else "ERROR", "on" if endpoint.enabled else "off",
                     endpoint.disabled_reason)

    @admin.display(description="deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        if not endpoint.pk:  # the add page's unsaved endpoint
            return format_html("{}", "—")
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<a href="{}">all deliveries</a>', url)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in ("url", "events", "description", "enabled")}
        if change:
            services.endpoint_update(endpoint=obj, **{k: v for k, v in data.items() if k in form.changed_data})
            return
        endpoint, secret = services.endpoint_create(tenant=form.cleaned_data["tenant"], **data)
        adopt(obj, endpoint)
        _show_secret(request, endpoint, secret, "The signing secret")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        disabled = WebhookEndpoint.objects.filter(enabled=False).exclude(disabled_reason="")[:5]
        for endpoint in disabled:
            messages.warning(request, f"Webhook endpoint {endpoint.url} was disabled: {endpoint.disabled_reason}")
        return super().changelist_view(request, extra_context)

    @admin.action(description="Send a test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.test_event_send(endpoint=endpoint)
        self.message_user(request, f"Test event queued for {queryset.count()} endpoint(s).")

    @admin.action(description="Rotate the signing secret (the old one signs too for the overlap)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint, secret = services.endpoint_rotate_secret(endpoint=endpoint)
            _show_secret(request, endpoint, secret, "The new signing secret")


class AttemptInline(ReadOnly, admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    extra = 0
    max_num = 0
    fields = readonly_fields = ("number", "started_at", "status_code", "latency_ms", "error", "response_excerpt",
                                "next_attempt_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin[WebhookDelivery]):
    list_display = ["created_at", "event_type", "event", "endpoint", "status", "attempts", "last_status_code",
                    "last_latency_ms", "last_error", "next_attempt_at"]
    list_filter = ["status", "event__type"]
    search_fields = ["event__event_id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["send_again"]

    @admin.display(description="type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.action(description="Send again (same event id)")
    def send_again(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery=delivery)
                sent += 1
            except FlowHQError as exc:
                self.message_user(request, f"Delivery {delivery.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{sent} deliver(y/ies) queued again.")
