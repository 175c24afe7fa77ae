from flowhq.api.urls import CHAT, route
from portal import schema, views  # noqa: F401  (schema: registers the headers' OpenAPI description)
from portal import webhook_views as hooks

WID = r"(?P<endpoint_id>[0-9]{1,18})"

urlpatterns = [
    route("tenant/current/status", views.PortalStatus.as_view(), "portal-status"),
    route("tenant/current/qr", views.PortalQr.as_view(), "portal-qr"),
    route("tenant/current/logs", views.PortalLogs.as_view(), "portal-logs"),
    route("tenant/current/chats/paused", views.PortalChatPauses.as_view(), "portal-chat-pauses"),
    route(f"tenant/current/chats/{CHAT}/pause", views.PortalChatPause.as_view(), "portal-chat-pause"),
    route("tenant/current/session/logout", views.PortalSessionLogout.as_view(), "portal-session-logout"),
    route("tenant/current/events", views.PortalEvents.as_view(), "portal-events"),
    route("setup-request", views.PortalSetupRequest.as_view(), "portal-setup-request"),
    route("tenant/current/webhooks", hooks.PortalWebhooks.as_view(), "portal-webhooks"),
    route(f"tenant/current/webhooks/{WID}", hooks.PortalWebhook.as_view(), "portal-webhook"),
    route(f"tenant/current/webhooks/{WID}/rotate-secret", hooks.PortalWebhookRotate.as_view(),
          "portal-webhook-rotate"),
    route(f"tenant/current/webhooks/{WID}/test", hooks.PortalWebhookTest.as_view(), "portal-webhook-test"),
    route(f"tenant/current/webhooks/{WID}/deliveries", hooks.PortalWebhookDeliveries.as_view(),
          "portal-webhook-deliveries"),
]
