"""No secret from a query string in a log line.

A caller may put a key or a password in a URL (`?key=...`), and Django logs the request
of every 4xx and 5xx (`django.request`, with the request as `extra`, whose repr holds
the full path), as runserver logs each request line (`django.server`). This filter, on
every handler, keeps the names of query parameters and the values of FlowHQ's own
harmless ones, and replaces every other value.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, quote

# Query parameters of FlowHQ's API and admin whose values are not secrets.
SHOWN = frozenset({"page", "page_size", "status", "direction", "source", "format", "o", "q", "p", "e"})
REDACTED = "[redacted]"


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote(name)}={quote(value) if name in SHOWN else REDACTED}" for name, value in pairs)


def redact_url(url: str) -> str:
    """`url` (a path, a full URL or a request line) with its query string's values redacted."""
    path, mark, rest = url.partition("?")
    if not mark:
        return url
    query, space, tail = rest.partition(" ")  # a request line: "GET /path?query HTTP/1.1"
    return f"{path}?{redact_query(query)}{space}{tail}"


class RedactQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "get_full_path"):
            record.request = f"<{type(request).__name__}: {request.method} {redact_url(request.get_full_path())!r}>"
        if record.name == "django.server" and isinstance(record.args, tuple) and record.args:
            first = record.args[0]
            if isinstance(first, str):
                record.args = (redact_url(first), *record.args[1:])
        return True
