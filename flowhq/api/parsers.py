from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers

from flowhq.text import has_unstorable

# No FlowHQ body nests deeper than 3; Python's json module recurses once per level and
# fails with RecursionError (a 500) somewhere near 1,000.
MAX_JSON_DEPTH = 32

# A JSON string, possessively (no backtracking): its brackets are not structure.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BoundedJSONParser(parsers.JSONParser):
    """JSON parser that refuses what the view must never see.

    - bodies over DATA_UPLOAD_MAX_MEMORY_SIZE: DRF reads the request stream itself,
      which bypasses Django's own limit; reading at most limit + 1 bytes bounds it;
    - nesting deeper than MAX_JSON_DEPTH, checked before parsing;
    - text PostgreSQL cannot store (NUL, lone surrogates) in any key or value.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        if json_depth(raw, stop_above=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        where = unstorable_at(data)
        if where is not None:
            raise exceptions.ParseError(
                f"JSON parse error - text at {where} holds a NUL character (\\u0000) or a lone surrogate "
                "(\\ud800-\\udfff), which cannot be stored."
            )
        return data


def json_depth(raw: bytes, *, stop_above: int) -> int:
    """How deep the arrays and objects of `raw` nest (counting stops once past `stop_above`)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_above:
                break
    return deepest


def unstorable_at(data: Any, path: str = "$") -> str | None:
    """The JSON path of the first key or string holding NUL or a lone surrogate, or None."""
    if isinstance(data, str):
        return path if has_unstorable(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            if has_unstorable(key):
                return f"{path} (a key)"
            found = unstorable_at(value, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = unstorable_at(value, f"{path}[{index}]")
            if found is not None:
                return found
    return None
