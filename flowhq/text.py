"""Text PostgreSQL can store: no NUL character, no lone surrogate.

Both can reach us — in a WhatsApp message (JavaScript strings may hold lone
surrogates), a JSON body (`"\\u0000"`, `"\\ud800"`) or a header — and either
makes the write fail (`DataError`), which would lose what carried it.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def storable(text: str) -> str:
    """`text` with NUL characters removed and each lone surrogate replaced by U+FFFD.

    A Python str holds a valid surrogate pair as one code point, so any surrogate
    code point left in it is a lone one."""
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)
