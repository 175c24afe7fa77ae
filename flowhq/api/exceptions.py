"""The one place that turns exceptions into API errors.

Every error body is `{"error": {"code": str, "message": str, "details": {...}}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response

from flowhq.errors import FlowHQError

log = logging.getLogger(__name__)

_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_request",
    drf.ValidationError: "invalid",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
}



def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _drf_message(exc: drf.APIException) -> tuple[str, Any]:
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            return "The request is not valid; see details.", detail
        # DRF makes any other detail a list.
        return "; ".join(str(item) for item in detail) or "Invalid request.", {"non_field_errors": detail}
    return str(exc.detail), {}


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, FlowHQError):
        retry = {"Retry-After": str(exc.retry_after_seconds)} if exc.retry_after_seconds else None
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status, headers=retry)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), exc.default_code)
        message, details = _drf_message(exc)
        headers = {}
        # Only some subclasses carry these (NotAuthenticated via the view, Throttled).
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)
    return None


def json_404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 handler: JSON under /api/, Django's page elsewhere (the admin site)."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", f"No such resource: {request.path}"), status=404)
    return defaults.page_not_found(request, exception)


def json_500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
