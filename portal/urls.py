from flowhq.api.urls import route
from portal import schema, views  # noqa: F401  (schema: registers the headers' OpenAPI description)

urlpatterns = [
    route("tenant/current/status", views.PortalStatus.as_view(), "portal-status"),
    route("tenant/current/qr", views.PortalQr.as_view(), "portal-qr"),
    route("tenant/current/logs", views.PortalLogs.as_view(), "portal-logs"),
    route("tenant/current/events", views.PortalEvents.as_view(), "portal-events"),
    route("setup-request", views.PortalSetupRequest.as_view(), "portal-setup-request"),
]
