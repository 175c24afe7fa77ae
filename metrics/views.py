from __future__ import annotations

from typing import Any, cast

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.authentication import BaseAuthentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from metrics.authentication import IsStaffOrMetricsToken, MetricsTokenAuthentication
from metrics.collector import REGISTRY


@extend_schema(exclude=True)  # Prometheus' text format, not part of the JSON API
class MetricsView(APIView):
    """GET /metrics: Prometheus text format; refusals are the API's JSON errors (401, 403, 429)."""

    # api_settings imports the dotted paths of the setting; the stubs type the setting as written.
    authentication_classes = [
        MetricsTokenAuthentication,
        *cast("list[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES),
    ]
    permission_classes = [IsStaffOrMetricsToken]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        # The body is always the text format; errors are always JSON. No Accept header gets a 406.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
