"""Refuses, before any view, request text that FlowHQ could not store or should not read.

- a NUL or a lone surrogate in the path, the query string or a header: PostgreSQL
  cannot store either, so a lookup or a write with one is a 500 (`DataError`) deep in a
  view; here it is a 400 for the whole site (API and admin);
- a form body POSTed to the API: the API takes JSON only, and a form would be parsed
  while a sign-in is counted (django-axes reads `request.POST`), so it is a 415 first.

JSON bodies are checked by the parser (flowhq.api.parsers).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from flowhq.api.exceptions import error_body
from flowhq.text import has_unstorable, storable

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNSTORABLE = "a NUL character or a lone surrogate"


def unstorable_part(request: HttpRequest) -> tuple[str, str] | None:
    """(where, name) of the first part of the request — the path, a query parameter, a header —
    holding text that cannot be stored, or None."""
    if has_unstorable(request.path_info):
        return "the path", "path"
    for key, values in request.GET.lists():
        if has_unstorable(key) or any(has_unstorable(value) for value in values):
            name = storable(key)
            return f"the query parameter {name!r}", name
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and has_unstorable(value):
            name = key[5:].replace("_", "-").title()
            return f"the {name} header", name
    return None


class EdgeInputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path_info.startswith("/api/")
        found = unstorable_part(request)
        if found is not None:
            where, name = found
            message = f"The request is refused: {where} holds {UNSTORABLE}."
            if api:
                return JsonResponse(error_body("invalid", message, {name: [f"Holds {UNSTORABLE}."]}), status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        if api and request.method == "POST" and request.content_type in _FORM_TYPES:
            return JsonResponse(
                error_body("unsupported_media_type", f'Unsupported media type "{request.content_type}" in request.'),
                status=415,
            )
        return self.get_response(request)
