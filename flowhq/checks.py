"""System checks for what a FlowHQ deployment needs beyond Django's own."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from flowhq.chromium import ChromiumNotFound, find_chromium


@register()
def chromium_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        find_chromium()
    except ChromiumNotFound as exc:
        return [Warning(exc.message, hint="Tenant workers cannot start their bot.", id="flowhq.W001")]
    return []


@register(Tags.security, deploy=False)
def secrets_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.DEBUG:
        return []
    errors = []
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        secret_key = ""
    if not secret_key:
        errors.append(
            Error("SECRET_KEY is not set", hint="Set the SECRET_KEY environment variable.", id="flowhq.E001")
        )
    if not settings.PORTAL_INTERNAL_KEY:
        errors.append(
            Error(
                "PORTAL_INTERNAL_KEY is not set: the portal API refuses every call",
                hint="Set PORTAL_INTERNAL_KEY to the secret the web portal sends as X-Portal-Key.",
                id="flowhq.E002",
            )
        )
    return errors
