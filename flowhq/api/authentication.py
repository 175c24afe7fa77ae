"""HTTP Basic for the staff API, with failed sign-ins counted and locked out (flowhq.lockout)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Field
from django.http import HttpRequest
from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from flowhq import lockout
from flowhq.text import has_unstorable, storable


class LockedOut(exceptions.APIException):
    status_code = 429
    default_code = "locked_out"

    def __init__(self) -> None:
        super().__init__(lockout.locked_out_message())
        self.wait = lockout.retry_after_seconds() or None


def django_request(request: Request | HttpRequest | None) -> Any:
    """The HttpRequest under DRF's Request: django-axes reads and marks the request, and DRF's
    Request would parse the body on the way (a malformed body would stop the count)."""
    return getattr(request, "_request", request)


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP Basic, counted by django-axes; a locked-out client gets 429 `locked_out`.

    Whether the user exists or not, ModelBackend runs the password hasher once (for an
    unknown user on a throwaway User), so the answer takes as long either way. A user name
    no user can have — with a NUL, which PostgreSQL cannot even compare, or longer than the
    user model allows — is a failure without a lookup.
    """

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[Any, None]:
        http_request = django_request(request)
        if has_unstorable(userid) or len(userid) > _username_max_length():
            name = storable(userid)[: _username_max_length()]
            if lockout.is_locked_out(http_request, name) or lockout.record_failure(http_request, name):
                raise LockedOut()
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        try:
            return super().authenticate_credentials(userid, password, http_request)
        except exceptions.AuthenticationFailed:
            if getattr(http_request, "axes_locked_out", False):
                raise LockedOut() from None
            raise


def _username_max_length() -> int:
    model = get_user_model()
    field = model._meta.get_field(model.USERNAME_FIELD)
    return (field.max_length if isinstance(field, Field) else None) or 150


class BasicAuthenticationScheme(BasicScheme):
    """OpenAPI: the same `basicAuth` scheme as DRF's own class (drf-spectacular matches exact classes)."""

    target_class = "flowhq.api.authentication.BasicAuthentication"
