from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flowhq.api import exceptions
from flowhq.health import readyz


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests (nothing else is touched; /readyz checks the rest)."""
    return JsonResponse({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/admin/", include("tenants.api.urls")),
    path("api/admin/", include("workers.api.urls")),
    path("api/admin/", include("webhooks.api.urls")),
    path("api/portal/", include("portal.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz),
    path("readyz", readyz),
    path("", include("metrics.urls")),
]

handler404 = exceptions.json_404
handler500 = exceptions.json_500
