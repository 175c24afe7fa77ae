"""Failed sign-ins counted, and clients locked out, by django-axes — for every way in.

django-axes counts the failures of the Django admin's login form, the portal web app's
sign-in (portal/web/forms.py: by email, through the same `authenticate()`), the API's HTTP Basic
auth (flowhq.api.authentication) and the portal's key (portal.auth) as AccessAttempt
rows, which the Django admin lists ("Axes" → "Access attempts", with a "locked out"
filter; deleting a row lifts its lockout). After AUTH_FAILURE_LIMIT failures within
AUTH_LOCKOUT_MINUTES, a user name, or an address, is refused — without running the
password hasher — until the failures are that old: 429 from the API, a page from the
admin. See docs/architecture.md, "Security at the edge".
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from flowhq.api.exceptions import error_body

# What a failed portal key is recorded as: it has no user, and counts against its address only.
PORTAL_KEY = "(portal key)"
LOCKED_OUT_MESSAGE = "Too many failed sign-ins for this user or from this address: try again in {minutes} minutes."


def lockout_parameters(request_or_attempt: Any, credentials: dict[str, Any] | None = None) -> list[str]:
    """AXES_LOCKOUT_PARAMETERS: a user name and an address are each locked out on their own.

    A portal key (or a failure with no user name) counts against its address only: one
    shared count for a shared secret would let anyone lock the portal out for everyone.
    """
    if credentials is not None:
        username = credentials.get("username")
    else:
        username = getattr(request_or_attempt, "username", None)
    if username is None or username == PORTAL_KEY:
        return ["ip_address"]
    return ["username", "ip_address"]


def retry_after_seconds() -> int:
    cool_off = get_cool_off()
    return int(cool_off.total_seconds()) if cool_off else 0


def locked_out_message() -> str:
    return LOCKED_OUT_MESSAGE.format(minutes=max(1, round(retry_after_seconds() / 60)))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the API's error shape under /api/, a page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(error_body("locked_out", locked_out_message()), status=429)
    else:
        context = {"title": "Too many failed sign-ins", "message": locked_out_message()}
        response = render(request, "flowhq/locked_out.html", context, status=429)
    response["Retry-After"] = str(retry_after_seconds())
    return response


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out client before ModelBackend hashes its password.

    Without a request (the test client's `login()`, a management command) there is no
    client to count against, so it steps aside rather than raising as axes does.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def is_locked_out(request: HttpRequest, username: str | None) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def record_failure(request: HttpRequest, username: str | None) -> bool:
    """Counts one failed sign-in by `username` (or PORTAL_KEY); True if the client is now locked out."""
    user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    return bool(getattr(request, "axes_locked_out", False))
