"""A fixed-window count in the default cache (Redis), for the portal's emails sent on request.

Like the API's throttles it fails open: with the cache down a request goes through.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def over_limit(*, scope: str, key: str, rate: str) -> bool:
    """Count one more request for `key`; True once more than the rate's count came in its window."""
    count, _, period = rate.partition("/")
    seconds = SECONDS[period]
    window = int(time.time() // seconds)
    digest = hashlib.sha256(key.casefold().encode("utf-8", "surrogateescape")).hexdigest()[:32]
    cache_key = f"portal-throttle:{scope}:{digest}:{window}"
    try:
        seen = 1 if cache.add(cache_key, 1, timeout=seconds) else cache.incr(cache_key)
    except (RedisError, ValueError) as exc:
        log.warning("portal throttling skipped: the cache is unavailable", extra={"why": str(exc)})
        return False
    return int(seen) > int(count)
