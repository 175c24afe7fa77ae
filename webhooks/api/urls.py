from flowhq.api.urls import ID, route
from webhooks.api import views

WID = r"(?P<endpoint_id>[0-9]{1,18})"

urlpatterns = [
    route(f"tenants/{ID}/webhooks", views.EndpointListCreate.as_view(), "tenant-webhooks"),
    route(f"tenants/{ID}/webhooks/{WID}", views.EndpointDetail.as_view(), "tenant-webhook"),
    route(f"tenants/{ID}/webhooks/{WID}/rotate-secret", views.EndpointRotateSecret.as_view(),
          "tenant-webhook-rotate"),
    route(f"tenants/{ID}/webhooks/{WID}/test", views.EndpointTest.as_view(), "tenant-webhook-test"),
    route(f"tenants/{ID}/webhooks/{WID}/deliveries", views.EndpointDeliveries.as_view(),
          "tenant-webhook-deliveries"),
]
