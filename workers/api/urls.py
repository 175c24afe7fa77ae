from flowhq.api.urls import ID, route
from workers.api import views

urlpatterns = [
    route(f"tenants/{ID}/worker", views.WorkerDetail.as_view(), "worker-detail"),
    route(f"tenants/{ID}/worker/start", views.WorkerStart.as_view(), "worker-start"),
    route(f"tenants/{ID}/worker/stop", views.WorkerStop.as_view(), "worker-stop"),
    route(f"tenants/{ID}/worker/restart", views.WorkerRestart.as_view(), "worker-restart"),
    route(f"tenants/{ID}/worker/force-restart", views.WorkerForceRestart.as_view(), "worker-force-restart"),
    route(f"tenants/{ID}/session/logout", views.SessionLogout.as_view(), "tenant-session-logout"),
    route(f"tenants/{ID}/session/new-qr", views.SessionNewQr.as_view(), "tenant-session-new-qr"),
    route(f"tenants/{ID}/messages", views.SendMessage.as_view(), "tenant-messages"),
]
