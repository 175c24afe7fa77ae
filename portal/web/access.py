"""Who is signed in to the portal web app, and the one tenant they may see.

Every page and action of the portal goes through `member_view`: an anonymous visitor is sent to the
sign-in page (an event stream gets a JSON 403 instead), and the signed-in user acts on the tenant of
their own `PortalMembership` (found by their account's email), never on one named in the URL. An
object named in a URL (a template, a chat) is looked up inside that tenant only, so naming another
tenant's object is a 404. Service errors become a page with their status (4xx), not a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, cast

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from flowhq.api.exceptions import error_body
from flowhq.errors import FlowHQError, NotFound
from tenants import selectors
from tenants.models import PortalMembership, Tenant

P = ParamSpec("P")


class NoTenant(NotFound):
    code = "no_tenant"


class NotAllowed(FlowHQError):
    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Member:
    """The signed-in user and their membership (None: no tenant yet)."""

    email: str
    membership: PortalMembership | None
    is_staff: bool

    @property
    def tenant(self) -> Tenant:
        if self.membership is None:
            raise NoTenant("You are not a member of any tenant.")
        return self.membership.tenant

    @property
    def can_edit_templates(self) -> bool:
        return self.membership is not None and self.membership.can_edit_templates


def member_of(request: HttpRequest) -> Member:
    user = request.user
    email = (getattr(user, "email", "") or "").strip()
    membership = selectors.membership_for_member(email=email) if email else None
    return Member(email=email, membership=membership, is_staff=bool(getattr(user, "is_staff", False)))


MemberView = Callable[Concatenate[HttpRequest, Member, P], HttpResponseBase]
PortalView = Callable[Concatenate[HttpRequest, P], HttpResponseBase]


def member_view(*, stream: bool = False) -> Callable[[MemberView[P]], PortalView[P]]:
    """A portal page or action for signed-in users, called with their `Member`."""

    def decorate(view: MemberView[P]) -> PortalView[P]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                if stream:
                    return JsonResponse(error_body("not_authenticated", "Sign in to the portal first."), status=403)
                return redirect_to_login(request.get_full_path())
            try:
                return view(request, member_of(request), *args, **kwargs)
            except FlowHQError as exc:
                if stream:
                    return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status)
                return error_page(request, exc)

        return cast(PortalView[P], wrapped)

    return decorate


def error_page(request: HttpRequest, exc: FlowHQError) -> HttpResponse:
    return render(request, "portal/error.html", {"error": exc, "title": "Not possible"}, status=exc.status)


def only_post(request: HttpRequest) -> None:
    if request.method != "POST":
        raise MethodNotAllowed("This address only takes a form's POST.")


class MethodNotAllowed(FlowHQError):
    code = "method_not_allowed"
    status = 405


def context(member: Member, **extra: Any) -> dict[str, Any]:
    return {"member": member, **extra}
