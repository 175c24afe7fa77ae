"""The portal web app's pages and actions (signed-in members; see portal/web/access.py).

Thin views: they read through tenants.selectors and write through the services
(tenants.services, tenants.takeover, portal.services). The overview page is kept current by
the portal's event stream (portal/events.py): `qr` events replace the QR image, and `status`
and `activity` events make the page fetch the fragment of itself that changed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from flowhq.errors import Conflict, NotFound
from portal import events
from portal import services as portal_services
from portal.web.access import Member, NotAllowed, member_view
from portal.web.forms import MATCH_HELP, MessageFilterForm, SetupRequestForm, TemplateForm
from tenants import selectors, services
from tenants.api.chat_views import chat_of
from tenants.models import ReplyTemplate, Tenant, WhatsAppSession
from tenants.states import SessionState
from tenants.takeover import chat_pause_end, chat_pause_list
from workers import linking
from workers.states import DesiredState, WorkerStatus

PAGE_SIZE = 50


def overview(tenant: Tenant) -> dict[str, Any]:
    """What the overview shows of the tenant: link state, QR, linked number, whether the bot runs."""
    session: WhatsAppSession = getattr(tenant, "session", None) or WhatsAppSession(tenant=tenant)
    worker = getattr(tenant, "worker", None)
    running = worker is not None and worker.status == WorkerStatus.RUNNING
    answering = running and session.state == SessionState.CONNECTED
    if answering:
        bot = "Running: answering messages"
    elif worker is None or worker.desired_state == DesiredState.STOPPED:
        bot = "Stopped by your operator"
    elif worker.status == WorkerStatus.ERROR:
        bot = "Stopped by an error: your operator has been told"
    elif session.state == SessionState.QR_READY:
        bot = "Waiting for you to scan the QR code"
    elif session.state == SessionState.QR_TIMEOUT:
        bot = "Paused: no QR code was scanned in time"
    elif session.state == SessionState.LOGGED_OUT:
        bot = "Paused: your phone unlinked it; link it again with a new QR code"
    elif session.state == SessionState.DISCONNECTED:
        bot = "Reconnecting to WhatsApp"
    else:
        bot = "Starting"
    return {
        "tenant": tenant,
        "session": session,
        "worker": worker,
        "answering": answering,
        "bot": bot,
        "qr": session.qr if session.state == SessionState.QR_READY and session.qr else "",
        "needs_new_qr": session.state in portal_services.NEEDS_NEW_QR
        and worker is not None and worker.desired_state == DesiredState.RUNNING,
    }


def activity(tenant: Tenant) -> dict[str, Any]:
    return {
        "recent": list(selectors.message_log_list(tenant_id=tenant.pk)[: settings.PORTAL_LIVE_MESSAGES]),
        "pauses": list(chat_pause_list(tenant_id=tenant.pk)),
    }


@require_GET
@member_view()
def home(request: HttpRequest, member: Member) -> HttpResponse:
    if member.membership is None:
        return render(request, "portal/setup.html", {
            "member": member, "form": SetupRequestForm(),
            "setup_request": selectors.setup_request_latest(email=member.email) if member.email else None,
        })
    tenant = member.tenant
    fragment = request.GET.get("fragment", "")
    if fragment == "status":
        return render(request, "portal/_status.html", overview(tenant))
    if fragment == "activity":
        return render(request, "portal/_activity.html", activity(tenant))
    return render(request, "portal/home.html",
                  {"member": member, "nav": "home", **overview(tenant), **activity(tenant)})


@require_POST
@member_view()
def setup_request(request: HttpRequest, member: Member) -> HttpResponse:
    if member.membership is not None:
        raise Conflict("You already have a tenant.")
    if not member.email:
        raise NotAllowed("Your account has no email address: ask your operator.")
    form = SetupRequestForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/setup.html", {"member": member, "form": form, "setup_request": None},
                      status=400)
    services.setup_request_submit(email=member.email, **form.cleaned_data)
    messages.success(request, "Thank you: an operator will set up your bot and tell you by email.")
    return redirect("portal:home")


@require_POST
@member_view()
def new_qr(request: HttpRequest, member: Member) -> HttpResponse:
    portal_services.qr_renew(tenant=member.tenant, requested_by=member.email)
    messages.success(request, "Your bot is starting again: a new QR code appears here in a few seconds.")
    return redirect("portal:home")


@require_POST
@member_view()
def whatsapp_logout(request: HttpRequest, member: Member) -> HttpResponse:
    """Unlink the member's phone from their bot (workers.linking, as the operators' logout)."""
    outcome = linking.session_logout(tenant_id=member.tenant.pk,
                                     reason=f"logout requested by {member.email} in the portal")
    messages.success(request, "Your phone is being unlinked: a new QR code to link again appears here."
                     if outcome.pending else "Your phone is unlinked: a QR code appears when your bot starts.")
    return redirect("portal:home")


@require_POST
@member_view()
def chat_resume(request: HttpRequest, member: Member, chat: str) -> HttpResponse:
    chat = chat_of(chat)
    if not chat_pause_end(tenant_id=member.tenant.pk, chat=chat):
        raise NotFound(f"The bot is not paused in {chat}.")
    messages.success(request, f"The bot answers in {chat} again.")
    return redirect("portal:home")


@require_GET
@member_view()
def message_log(request: HttpRequest, member: Member) -> HttpResponse:
    tenant = member.tenant
    form = MessageFilterForm(request.GET)
    logs = selectors.message_log_list(tenant_id=tenant.pk, **form.filters())
    page = Paginator(logs, PAGE_SIZE).get_page(request.GET.get("page"))
    if request.GET.get("fragment") == "rows":
        return render(request, "portal/_message_rows.html", {"page": page})
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("fragment", None)
    return render(request, "portal/messages.html", {
        "member": member, "nav": "messages", "tenant": tenant, "form": form, "page": page,
        "query": query.urlencode(),
        "live": page.number == 1,
    })


def _template_of(member: Member, template_id: str) -> ReplyTemplate:
    template = selectors.template_list(tenant_id=member.tenant.pk).filter(pk=template_id).first()
    if template is None:
        raise NotFound(f"Your tenant has no template {template_id}.")
    return template


def _must_edit(member: Member) -> None:
    if not member.can_edit_templates:
        raise NotAllowed("Changing templates needs your operator's permission.")


@require_GET
@member_view()
def template_list(request: HttpRequest, member: Member) -> HttpResponse:
    tenant = member.tenant
    return render(request, "portal/templates.html", {
        "member": member, "nav": "templates", "tenant": tenant,
        "templates": selectors.template_list(tenant_id=tenant.pk),
        "form": TemplateForm() if member.can_edit_templates else None, "match_help": MATCH_HELP,
    })


@require_POST
@member_view()
def template_create(request: HttpRequest, member: Member) -> HttpResponse:
    _must_edit(member)
    tenant = member.tenant
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/templates.html", {
            "member": member, "tenant": tenant, "templates": selectors.template_list(tenant_id=tenant.pk),
            "form": form, "match_help": MATCH_HELP,
        }, status=400)
    services.template_create(tenant=tenant, **form.cleaned_data)
    messages.success(request, "Template added: your bot uses it from its next message.")
    return redirect("portal:templates")


@require_http_methods(["GET", "POST"])
@member_view()
def template_edit(request: HttpRequest, member: Member, template_id: str) -> HttpResponse:
    template = _template_of(member, template_id)
    _must_edit(member)
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        if changed:
            services.template_update(template=template, **changed)
        messages.success(request, "Template saved.")
        return redirect("portal:templates")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/template_edit.html", {
        "member": member, "tenant": member.tenant, "template": template, "form": form, "match_help": MATCH_HELP,
    }, status=status)


@require_POST
@member_view()
def template_delete(request: HttpRequest, member: Member, template_id: str) -> HttpResponse:
    template = _template_of(member, template_id)
    _must_edit(member)
    services.template_delete(template=template)
    messages.success(request, "Template deleted.")
    return redirect("portal:templates")


@require_GET
@member_view(stream=True)
def event_stream(request: HttpRequest, member: Member) -> StreamingHttpResponse:
    """The portal API's event stream (portal/events.py) for the signed-in member, with `activity`."""
    member.tenant  # noqa: B018  (no tenant: a JSON 404 before the stream starts)
    return events.stream_response(email=member.email, live_messages=settings.PORTAL_LIVE_MESSAGES)

