from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flowhq.api import exceptions
from flowhq.health import readyz


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests (nothing else is touched; /readyz checks the rest)."""
    return JsonResponse({"ok": True})


def root(request: HttpRequest) -> HttpResponseRedirect:
    """`/` (and the admin's "View site"): the fleet console for staff, the portal for everyone else."""
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("console:home")
    return redirect("portal:home")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/admin/", include("tenants.api.urls")),
    path("api/admin/", include("workers.api.urls")),
    path("api/admin/", include("webhooks.api.urls")),
    path("api/admin/", include("portal.invitation_urls")),
    path("api/portal/", include("portal.urls")),
    path("portal/", include("portal.web.urls")),
    path("console/", include("console.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz),
    path("readyz", readyz),
    path("", root, name="root"),
    path("", include("metrics.urls")),
]

handler404 = exceptions.json_404
handler500 = exceptions.json_500
