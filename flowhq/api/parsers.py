from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BoundedJSONParser(parsers.JSONParser):
    """JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE.

    DRF reads the request stream itself, which bypasses Django's own limit;
    reading at most limit + 1 bytes also covers chunked bodies with no length.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        return super().parse(io.BytesIO(raw), media_type, parser_context)
