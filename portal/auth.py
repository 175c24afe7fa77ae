"""Who is calling the portal API: the portal backend, on behalf of one signed-in user.

The web portal authenticates its users itself and calls FlowHQ server to server
with two headers:

- `X-Portal-Key`: the shared secret `PORTAL_INTERNAL_KEY`, compared in constant
  time. With the setting empty the portal API is switched off (503
  `portal_disabled`) rather than open to anyone.
- `X-User-Email`: the signed-in user, whose `PortalMembership` decides the one
  tenant they may see.

A missing or wrong key, or a missing or malformed email, is a 401; see
docs/architecture.md, "Portal API". Wrong keys are counted per address by django-axes
(flowhq.lockout): after AUTH_FAILURE_LIMIT of them that address gets 429 `locked_out`,
even with the right key, until AUTH_LOCKOUT_MINUTES have passed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from flowhq import lockout
from flowhq.api.authentication import LockedOut, django_request

KEY_HEADER = "X-Portal-Key"
USER_HEADER = "X-User-Email"
MAX_EMAIL_LENGTH = 254


class PortalDisabled(exceptions.APIException):
    status_code = 503
    default_detail = "The portal API is disabled: PORTAL_INTERNAL_KEY is not configured on the server."
    default_code = "portal_disabled"


@dataclass(frozen=True)
class PortalUser:
    """The portal's signed-in user, known only by email; never a Django user."""

    email: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    def __str__(self) -> str:
        return self.email


class PortalKeyAuthentication(BaseAuthentication):
    """Authenticates the portal backend by key and takes the user from `X-User-Email`."""

    def authenticate(self, request: Request) -> tuple[PortalUser, None]:
        expected = settings.PORTAL_INTERNAL_KEY
        if not expected:
            raise PortalDisabled()
        given = request.headers.get(KEY_HEADER)
        if not given:
            raise exceptions.NotAuthenticated(f"The {KEY_HEADER} header is required.")
        # Checked before the key is compared: a locked-out address learns nothing from its guesses.
        http_request = django_request(request)
        if lockout.is_locked_out(http_request, lockout.PORTAL_KEY):
            raise LockedOut()
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8")):
            if lockout.record_failure(http_request, lockout.PORTAL_KEY):
                raise LockedOut()
            raise exceptions.AuthenticationFailed(f"The {KEY_HEADER} header is not valid.")
        email = (request.headers.get(USER_HEADER) or "").strip()
        if not email:
            raise exceptions.NotAuthenticated(f"The {USER_HEADER} header (the signed-in user) is required.")
        if len(email) > MAX_EMAIL_LENGTH or not _is_email(email):
            raise exceptions.AuthenticationFailed(f"The {USER_HEADER} header is not a valid email address.")
        return PortalUser(email=email), None

    def authenticate_header(self, request: Request) -> str:
        # Any value keeps DRF from turning the 401 into a 403.
        return 'PortalKey realm="portal"'


class IsPortalUser(BasePermission):
    """Only callers authenticated by `PortalKeyAuthentication`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, PortalUser)


def _is_email(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True
