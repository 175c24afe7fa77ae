"""DRF throttling of every API call: per address for anonymous callers, per user otherwise.

The counts live in the default cache (Redis, shared by every gunicorn worker). Rates are
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (API_THROTTLE_ANON, API_THROTTLE_USER).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.request import Request
from rest_framework.settings import api_settings

log = logging.getLogger(__name__)


class _FailOpen(throttling.SimpleRateThrottle):
    """A throttle that lets the call through when the cache (Redis) is down: the database
    holds the work and Redis outages must not take the API down with them."""

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as exc:
            log.warning("API throttling skipped: the cache is unavailable (%s)", exc)
            return True

    def get_rate(self) -> str | None:
        # Read per call, not once at import as DRF does: override_settings in tests works.
        # (The DRF stubs type these rates as numbers; DRF's are strings such as "60/minute".)
        rates = cast("dict[str | None, str | None]", api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope)


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    """Per user: a staff user by id, a portal user (no Django user) by email."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if not (user and user.is_authenticated):
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        ident = getattr(user, "pk", None) or f"portal:{user}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
