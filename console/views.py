"""The fleet console: one page for operators (staff), and the lifecycle action of each problem.

Reads go through console.selectors; an action calls the same lifecycle service as the API and
the admin (workers.admin_actions.OPERATIONS → workers/lifecycle.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console import selectors
from flowhq.errors import FlowHQError
from tenants.models import Tenant
from workers.admin_actions import OPERATIONS
from workers.linking import LinkOutcome
from workers.states import WorkerStatus

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    """Anonymous: to the admin's sign-in; signed in without staff rights: 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (request.user.is_active and request.user.is_staff):
            return render(request, "console/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@staff_only
def home(request: HttpRequest) -> HttpResponse:
    hosts = selectors.host_list()
    workers = selectors.workers_by_status()
    return render(request, "console/home.html", {
        **admin.site.each_context(request),
        "title": "Fleet console",
        "hosts": hosts,
        "capacity": sum(h.capacity for h in hosts if h.live and not h.draining),
        "placed": sum(h.placed for h in hosts),
        "workers": workers,
        "workers_total": sum(workers.values()),
        "worker_errors": workers.get(WorkerStatus.ERROR, 0),
        "attention": selectors.tenants_needing_attention(),
        "rate": selectors.message_rate(),
        "backlog": selectors.webhook_backlog(),
        "refresh_seconds": settings.CONSOLE_REFRESH_SECONDS,
    })


@require_POST
@staff_only
def tenant_action(request: HttpRequest, tenant_id: str, verb: str) -> HttpResponse:
    op = OPERATIONS.get(verb)
    tenant = Tenant.objects.filter(pk=int(tenant_id)).first()
    if op is None or tenant is None:
        return render(request, "console/forbidden.html", {"not_found": True}, status=404)
    try:
        outcome = op.service(tenant_id=tenant.pk, reason=f"{verb} requested by {request.user} in the console")
    except FlowHQError as exc:
        messages.error(request, f"Could not {verb} {tenant}: {exc.message}")
    else:
        changed = outcome.pending if isinstance(outcome, LinkOutcome) else outcome.changed
        if changed:
            messages.success(request, f"{op.label} requested for {tenant}; the fleet agent carries it out.")
        else:  # "already running": nothing had to change
            messages.info(request, f"{tenant}: {outcome.message}.")
    return redirect("console:home")
