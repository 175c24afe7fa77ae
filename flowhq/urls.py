from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from flowhq.api import exceptions


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/admin/", include("tenants.api.urls")),
    path("api/admin/", include("workers.api.urls")),
    path("healthz", healthz),
]

handler404 = exceptions.json_404
handler500 = exceptions.json_500
