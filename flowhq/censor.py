"""No secret on a page that shows settings: Celery's `inspect conf` (and so Flower's
worker page), and Django's debug pages.

Both already hide settings whose names look secret (KEY, SECRET, PASS, TOKEN, ...), but
not URLs: Celery masks only its lower-case `broker_url`, so `REDIS_URL`,
`CELERY_BROKER_URL` and the cache's LOCATION would show a Redis password. Here every
string that is a URL has its password masked as well, at any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from celery.app.utils import filter_hidden_settings
from django.views.debug import SafeExceptionReporterFilter
from kombu.utils.url import maybe_sanitize_url

MASK = "********"


def mask_urls(value: Any) -> Any:
    """`value` with the password of every URL in it masked (mappings and sequences too)."""
    if isinstance(value, str):
        return _mask_url(value)
    if isinstance(value, Mapping):
        return {key: mask_urls(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_urls(item) for item in value)
    return value


def _mask_url(text: str) -> str:
    if "://" not in text:
        return text
    try:
        has_password = urlsplit(text.strip()).password is not None
    except ValueError:  # looks like a URL but does not parse: show none of it
        return MASK
    return maybe_sanitize_url(text, mask=MASK) if has_password else text


def censored_conf(table: Mapping[str, Any]) -> dict[str, Any]:
    """A Celery configuration table as `inspect conf` should show it."""
    masked: dict[str, Any] = mask_urls(filter_hidden_settings(dict(table)))
    return masked


class SafeSettingsFilter(SafeExceptionReporterFilter):
    """DEFAULT_EXCEPTION_REPORTER_FILTER: Django's, plus URL passwords masked."""

    cleansed_substitute = MASK

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        return mask_urls(super().cleanse_setting(key, value))
