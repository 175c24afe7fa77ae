from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import URLPattern, re_path

ID = r"(?P<tenant_id>[0-9]{1,18})"
# A chat: a number (a 1:1 chat, `@c.us`), or a chat id `<digits>@c.us|g.us|lid`.
CHAT = r"(?P<chat>[0-9]{5,20}(?:-[0-9]{1,20})?(?:@(?:c\.us|g\.us|lid))?)"


def route(pattern: str, view: Callable[..., HttpResponseBase], name: str) -> URLPattern:
    """An API route that matches with or without a trailing slash."""
    return re_path(rf"^{pattern.rstrip('/')}/?$", view, name=name)
