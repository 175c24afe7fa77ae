"""Who may read /metrics: staff (session, Basic, token — the API's own authentication) or
Prometheus with `Authorization: Bearer <METRICS_TOKEN>`."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

METRICS_TOKEN = "metrics-token"  # request.auth once the bearer token matched


class MetricsTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header: expected `Bearer <METRICS_TOKEN>`.")
        expected = settings.METRICS_TOKEN
        if not expected:
            raise exceptions.AuthenticationFailed("METRICS_TOKEN is not set on this server: sign in as staff.")
        if not hmac.compare_digest(parts[1], expected.encode()):
            raise exceptions.AuthenticationFailed("Invalid metrics token.")
        return AnonymousUser(), METRICS_TOKEN

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="metrics"'


class IsStaffOrMetricsToken(permissions.BasePermission):
    message = "Only staff users (or the METRICS_TOKEN) may read the metrics."

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.auth == METRICS_TOKEN or bool(request.user and request.user.is_staff)
