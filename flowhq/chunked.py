"""Request bodies without a Content-Length (`Transfer-Encoding: chunked`), for Django.

Django reads CONTENT_LENGTH bytes of a body and nothing else, so a chunked body looks
empty to every view. gunicorn de-chunks the body and says so (`wsgi.input_terminated`):
this WSGI wrapper reads it — at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, a larger one is a
413 — and hands Django the body with its length. A server that cannot say where such a
body ends gets a 411.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from flowhq.api.exceptions import error_body

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def reads_chunked_bodies(app: WSGIApp) -> WSGIApp:
    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
            if not environ.get("wsgi.input_terminated"):
                return _refuse(start_response, "411 Length Required", "length_required",
                               "A request body needs a Content-Length header here.")
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return _refuse(start_response, "413 Request Entity Too Large", "payload_too_large",
                               "The request body is too large.")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return wrapped


def _refuse(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = json.dumps(error_body(code, message)).encode()
    # The unread body is still on the connection: close it rather than parse it as a request.
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Connection", "close")])
    return [body]
