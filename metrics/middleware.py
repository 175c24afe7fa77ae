"""Counts and times every request of `web` (metrics/http_requests.py).

Labels stay bounded: the route is the URL pattern's name (the URLconf has a fixed set),
never the path; a request no pattern matched is `unmatched` (404s, probes) or `static`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch

from flowhq.log_throttle import ThrottledWarning
from metrics.http_requests import request_observed

log = logging.getLogger(__name__)


def route_name(request: HttpRequest) -> str:
    match: ResolverMatch | None = getattr(request, "resolver_match", None)
    if match is not None and match.view_name:
        return match.view_name.replace("|", "/")
    static = "/" + settings.STATIC_URL.lstrip("/")
    return "static" if request.path.startswith(static) else "unmatched"


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self._failed = ThrottledWarning(log, "request not counted")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            request_observed(method=request.method or "", status=response.status_code, route=route_name(request),
                             seconds=time.perf_counter() - started)
        except Exception as exc:  # counting must never fail a request
            self._failed("requests", exc)
        return response
