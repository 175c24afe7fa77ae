"""The portal web app with Django's test client: sign-in, invitations, resets, each page and action,
and a member of another tenant who gets none of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants import services
from tenants.models import (
    ChatPause,
    MessageLog,
    PortalMembership,
    ReplyTemplate,
    SetupRequest,
    WhatsAppSession,
)
from tenants.states import SessionState
from tenants.takeover import chat_pause_renew
from tests.portal_web.conftest import PASSWORD, signed_in
from workers.bot.qr import qr_data_uri
from workers.models import WorkerProcess
from workers.states import DesiredState, WorkerStatus

pytestmark = pytest.mark.django_db


def link_of(message: mail.EmailMessage) -> str:
    (link,) = re.findall(r"https?://\S+", message.body)
    return link


def qr_waiting(tenant, payload: str = "2@qr-payload") -> str:
    uri = qr_data_uri(payload)
    WhatsAppSession.objects.filter(tenant=tenant).update(state=SessionState.QR_READY, qr=uri,
                                                         qr_issued_at=timezone.now())
    return uri


def log(tenant, message_id: str, body: str, chat: str = "4915111@c.us", direction: str = "in",
        status: str = "replied") -> MessageLog:
    return MessageLog.objects.create(tenant=tenant, message_id=message_id, chat=chat, direction=direction,
                                     body=body, status=status)


# --- signing in -------------------------------------------------------------------


def test_a_member_signs_in_with_email_and_password(alice):
    client = Client()
    page = client.get("/portal/sign-in/")
    assert page.status_code == 200
    response = client.post("/portal/sign-in/", {"username": "Alice@Acme.example", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    assert "Acme" in client.get("/portal/").content.decode()


def test_a_wrong_password_is_refused_and_counted_until_lockout(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        response = client.post("/portal/sign-in/", {"username": "alice@acme.example", "password": "wrong"})
        assert response.status_code == 200
        assert "enter a correct email and password" in response.content.decode().lower()
    locked = client.post("/portal/sign-in/", {"username": "alice@acme.example", "password": "wrong"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    # Locked out: even the right password is refused.
    again = client.post("/portal/sign-in/", {"username": "alice@acme.example", "password": PASSWORD})
    assert again.status_code == 429


def test_sign_in_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/portal/sign-in/", {"username": "alice@acme.example", "password": PASSWORD})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(db):
    client = Client()
    for url in ["/portal/", "/portal/messages/", "/portal/templates/", "/portal/templates/1/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/portal/sign-in/?next="), url
    for url in ["/portal/new-qr/", "/portal/chats/4915111/resume/", "/portal/templates/new/",
                "/portal/templates/1/delete/", "/portal/setup-request/"]:
        assert client.post(url)["Location"].startswith("/portal/sign-in/"), url
    stream = client.get("/portal/events/")
    assert stream.status_code == 403
    assert stream.json()["error"]["code"] == "not_authenticated"


def test_sign_out_is_a_post(alice):
    client = signed_in(alice)
    assert client.post("/portal/sign-out/").status_code == 302
    assert client.get("/portal/").status_code == 302


# --- invitations and password resets --------------------------------------------------


def test_an_operator_invites_a_member_by_api_and_the_link_sets_a_password_once(api, acme):
    response = api.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": "new@acme.example"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["account_created"] is True
    assert PortalMembership.objects.get(email="new@acme.example").tenant == acme
    (message,) = mail.outbox
    assert message.to == ["new@acme.example"]
    assert "Acme" in message.subject
    path = link_of(message).split("testserver", 1)[1]

    client = Client()
    form = client.get(path, follow=True)
    assert form.status_code == 200
    assert "set-password" in form.redirect_chain[-1][0]
    # Django's password validators apply.
    weak = client.post(form.redirect_chain[-1][0], {"new_password1": "123", "new_password2": "123"})
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    assert "Acme" in client.get("/portal/").content.decode()  # signed in

    # The link works once.
    assert "expired or was used" in Client().get(path, follow=True).content.decode()
    assert Client().login(username="new@acme.example", password=PASSWORD)


def test_an_invitation_refuses_staff_and_members_of_another_tenant(api, acme, globex, outsider, staff_user):
    other = api.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": "olga@globex.example"}, format="json")
    assert other.status_code == 409
    staff = api.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": staff_user.email}, format="json")
    assert staff.status_code == 409
    assert staff.json()["error"]["code"] == "staff_account"
    assert api.post("/api/admin/tenants/999999/invitations", {"email": "x@y.example"}, format="json").status_code == 404
    assert api.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": "nope"}, format="json").status_code == 400
    assert mail.outbox == []


def test_invitations_are_staff_only(anon, alice, acme):
    assert anon.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": "a@b.example"},
                     format="json").status_code == 401


def test_an_operator_invites_from_the_admin(acme, staff_user):
    superuser = get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="r@x.example")
    membership, _ = services.membership_add(tenant=acme, email="bob@acme.example")
    client = signed_in(superuser)
    response = client.post("/admin/tenants/portalmembership/", {
        "action": "send_invitation", "_selected_action": [membership.pk],
    }, follow=True)
    assert "Invitation sent to bob@acme.example" in response.content.decode()
    assert [m.to for m in mail.outbox] == [["bob@acme.example"]]


def test_a_member_resets_a_forgotten_password(alice):
    client = Client()
    assert client.post("/portal/password-reset/", {"email": "alice@acme.example"}).status_code == 302
    assert client.post("/portal/password-reset/", {"email": "nobody@acme.example"}).status_code == 302
    (message,) = mail.outbox  # nothing for an unknown address, and no way to tell
    path = link_of(message).split("testserver", 1)[1]
    form = client.get(path, follow=True)
    new = "another-long-pass-77"
    assert client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}).status_code == 302
    assert Client().login(username="alice@acme.example", password=new)


# --- the overview -------------------------------------------------------------------


def test_the_overview_shows_the_qr_state_number_and_bot(alice, acme):
    client = signed_in(alice)
    uri = qr_waiting(acme)
    page = client.get("/portal/").content.decode()
    assert f'src="{uri}"' in page
    assert 'data-state="QR_READY"' in page
    assert "Waiting for you to scan" in page or "Stopped by your operator" in page

    WhatsAppSession.objects.filter(tenant=acme).update(state=SessionState.CONNECTED, qr="", phone="4915550001")
    WorkerProcess.objects.filter(tenant=acme).update(status=WorkerStatus.RUNNING, desired_state=DesiredState.RUNNING)
    status = client.get("/portal/?fragment=status").content.decode()
    assert 'data-state="CONNECTED"' in status
    assert "+4915550001" in status
    assert 'data-answering="yes"' in status


def test_a_new_qr_restarts_a_bot_whose_codes_timed_out(alice, acme):
    client = signed_in(alice)
    WhatsAppSession.objects.filter(tenant=acme).update(state=SessionState.QR_TIMEOUT)
    # A stopped bot is the operator's to start.
    assert client.post("/portal/new-qr/").status_code == 409
    WorkerProcess.objects.filter(tenant=acme).update(status=WorkerStatus.RUNNING, desired_state=DesiredState.RUNNING)
    assert "Show a new QR code" in client.get("/portal/").content.decode()
    epoch = WorkerProcess.objects.get(tenant=acme).epoch
    assert client.post("/portal/new-qr/").status_code == 302
    assert WorkerProcess.objects.get(tenant=acme).epoch == epoch + 1
    WhatsAppSession.objects.filter(tenant=acme).update(state=SessionState.CONNECTED)
    assert client.post("/portal/new-qr/").status_code == 409


def test_a_member_resumes_a_paused_chat(alice, acme):
    chat_pause_renew(tenant_id=acme.pk, chat="4915111@c.us", until=timezone.now() + timedelta(minutes=30))
    client = signed_in(alice)
    assert "4915111@c.us" in client.get("/portal/?fragment=activity").content.decode()
    response = client.post("/portal/chats/4915111@c.us/resume/", follow=True)
    assert "The bot answers in 4915111@c.us again" in response.content.decode()
    assert not ChatPause.objects.exists()
    assert client.post("/portal/chats/4915111@c.us/resume/").status_code == 404


# --- the message log ------------------------------------------------------------------


def test_the_message_log_filters(alice, acme):
    log(acme, "m1", "hello there", chat="4915111@c.us")
    log(acme, "m2", "menu please", chat="4915222@c.us")
    log(acme, "r2", "Today: espresso", chat="4915222@c.us", direction="out", status="sent")
    client = signed_in(alice)
    everything = client.get("/portal/messages/").content.decode()
    assert all(text in everything for text in ["hello there", "menu please", "Today: espresso"])
    one_chat = client.get("/portal/messages/?chat=4915222@c.us&direction=in").content.decode()
    assert "menu please" in one_chat
    assert "hello there" not in one_chat
    assert "Today: espresso" not in one_chat
    rows = client.get("/portal/messages/?status=sent&fragment=rows").content.decode()
    assert "Today: espresso" in rows
    assert "<html" not in rows
    # A filter it cannot read is said, not a 500.
    assert client.get("/portal/messages/?direction=sideways&page=zzz").status_code == 200


# --- templates ------------------------------------------------------------------------


def test_templates_are_shown_and_edited_only_with_permission(alice, acme):
    template = services.template_create(tenant=acme, match="keyword", pattern="hours", body="Open 9-5")
    client = signed_in(alice)
    page = client.get("/portal/templates/").content.decode()
    assert "Open 9-5" in page
    assert "Add a reply" not in page
    assert client.get(f"/portal/templates/{template.pk}/").status_code == 403
    assert client.post("/portal/templates/new/", {"match": "exact", "pattern": "x", "body": "y",
                                                   "priority": 0, "enabled": "on"}).status_code == 403
    assert client.post(f"/portal/templates/{template.pk}/delete/").status_code == 403

    PortalMembership.objects.filter(email="alice@acme.example").update(can_edit_templates=True)
    assert "Add a reply" in client.get("/portal/templates/").content.decode()
    bad = client.post("/portal/templates/new/", {"match": "exact", "pattern": "", "body": "y", "priority": 0})
    assert bad.status_code == 400
    assert "needs a pattern" in bad.content.decode()
    assert client.post("/portal/templates/new/", {"match": "exact", "pattern": "menu", "body": "Espresso 2.50",
                                                   "priority": 3, "enabled": "on"}).status_code == 302
    assert ReplyTemplate.objects.filter(tenant=acme, pattern="menu", priority=3).exists()
    assert client.post(f"/portal/templates/{template.pk}/", {"match": "keyword", "pattern": "hours, open",
                                                              "body": "Open 9-6", "priority": 1,
                                                              "enabled": "on"}).status_code == 302
    template.refresh_from_db()
    assert (template.pattern, template.body) == ("hours, open", "Open 9-6")
    assert client.post(f"/portal/templates/{template.pk}/delete/").status_code == 302
    assert not ReplyTemplate.objects.filter(pk=template.pk).exists()


# --- no tenant yet ---------------------------------------------------------------------


def test_a_user_without_a_tenant_asks_for_a_setup(db):
    user = get_user_model().objects.create_user(username="new@shop.example", email="new@shop.example",
                                                password=PASSWORD)
    client = signed_in(user)
    assert "Ask for a bot" in client.get("/portal/").content.decode()
    bad = client.post("/portal/setup-request/", {"business_name": "Shop", "phone": "call me"})
    assert bad.status_code == 400
    assert "Enter a phone number" in bad.content.decode()
    assert client.post("/portal/setup-request/", {"business_name": "Shop", "phone": "+44 20 7946 0000"}).status_code == 302
    request = SetupRequest.objects.get()
    assert (request.email, request.phone) == ("new@shop.example", "+442079460000")
    assert 'data-state="PENDING"' in client.get("/portal/").content.decode()
    # Pages of a tenant: nothing to show, a 404 page, not a 500.
    for url in ["/portal/messages/", "/portal/templates/"]:
        assert client.get(url).status_code == 404, url
    assert client.post("/portal/new-qr/").status_code == 404
    assert client.get("/portal/events/").status_code == 404


# --- the outsider ------------------------------------------------------------------------


def test_a_member_of_another_tenant_sees_none_of_it(alice, acme, outsider, globex):
    secret = "acme-only secret message"
    qr = qr_waiting(acme, "2@acme-secret-qr")
    log(acme, "a1", secret)
    WhatsAppSession.objects.filter(tenant=acme).update(phone="4915550001")
    template = services.template_create(tenant=acme, match="keyword", pattern="hours", body="acme hours reply")
    chat_pause_renew(tenant_id=acme.pk, chat="4915999@c.us", until=timezone.now() + timedelta(minutes=30))
    PortalMembership.objects.filter(email="olga@globex.example").update(can_edit_templates=True)

    client = signed_in(outsider)
    for url in ["/portal/", "/portal/?fragment=status", "/portal/?fragment=activity", "/portal/messages/",
                "/portal/messages/?chat=4915111@c.us", "/portal/messages/?fragment=rows", "/portal/templates/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for leaked in [secret, qr, "Acme", "4915550001", "acme hours reply", "4915999"]:
            assert leaked not in body, (url, leaked)
    # Naming Acme's objects: 404, and nothing changes.
    assert client.get(f"/portal/templates/{template.pk}/").status_code == 404
    assert client.post(f"/portal/templates/{template.pk}/", {"match": "exact", "pattern": "x", "body": "pwned",
                                                              "priority": 0}).status_code == 404
    assert client.post(f"/portal/templates/{template.pk}/delete/").status_code == 404
    assert client.post("/portal/chats/4915999@c.us/resume/").status_code == 404
    assert client.post("/portal/templates/99999999999999999/delete/").status_code == 404
    assert client.get("/console/").status_code == 403
    assert client.post(f"/console/tenants/{acme.pk}/restart/").status_code == 403
    assert ReplyTemplate.objects.get(pk=template.pk).body == "acme hours reply"
    assert ChatPause.objects.filter(tenant=acme).exists()
    # Its own tenant is what it sees.
    assert "Globex" in client.get("/portal/").content.decode()


def test_the_event_stream_carries_only_the_members_tenant(alice, acme, outsider, globex, settings):
    settings.PORTAL_SSE_LIFETIME_SECONDS = 0
    log(acme, "a1", "acme-only secret message")
    log(globex, "g1", "globex hello")
    response = signed_in(outsider).get("/portal/events/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "event: status" in body
    assert "event: qr" in body
    assert "event: activity" in body
    assert "globex hello" in body
    assert "acme-only" not in body
    assert "Acme" not in body


# --- / and the admin's "View site" -----------------------------------------------------------


def test_the_root_leads_staff_to_the_console_and_everyone_else_to_the_portal(alice, staff_user):
    assert Client().get("/")["Location"] == "/portal/"
    assert signed_in(alice).get("/")["Location"] == "/portal/"
    assert signed_in(staff_user).get("/")["Location"] == "/console/"


def test_an_invitation_link_expires_after_portal_invitation_days(api, acme, monkeypatch, settings):
    from datetime import datetime

    from portal.invitations import invitation_tokens

    settings.PORTAL_INVITATION_DAYS = 2
    assert api.post(f"/api/admin/tenants/{acme.pk}/invitations", {"email": "late@acme.example"},
                    format="json").status_code == 202
    path = link_of(mail.outbox[0]).split("testserver", 1)[1]
    later = datetime.now() + timedelta(days=2, hours=1)  # noqa: DTZ005  (the token generator's own clock is naive)
    monkeypatch.setattr(invitation_tokens, "_now", lambda: later)
    assert "expired or was used" in Client().get(path, follow=True).content.decode()


def test_portal_invite_prints_the_link(acme, capsys):
    from django.core.management import call_command

    call_command("portal_invite", "cli@acme.example", "--tenant", acme.slug)
    out = capsys.readouterr().out
    assert "Invited cli@acme.example" in out
    assert "/portal/invitation/" in out
    assert PortalMembership.objects.get(email="cli@acme.example").tenant == acme


def test_the_admin_grants_template_editing_on_the_tenant_page(acme, alice):
    superuser = get_user_model().objects.create_superuser(username="root", password=PASSWORD, email="r@x.example")
    page = signed_in(superuser).get(f"/admin/tenants/tenant/{acme.pk}/change/").content.decode()
    assert "can_edit_templates" in page
    assert 'href="/"' in page  # "View site": / leads staff to the console


def test_every_portal_address_refuses_or_ignores_an_outsider_and_none_is_a_server_error(
    alice, acme, outsider, globex,
):
    """Each route of portal/web/urls.py, GET and POST, naming Acme's objects, as Globex's member."""
    from django.urls import URLPattern, reverse

    from portal.web import urls

    secret = "acme-only secret message"
    log(acme, "a1", secret)
    template = services.template_create(tenant=acme, match="keyword", pattern="hours", body="acme hours reply")
    chat_pause_renew(tenant_id=acme.pk, chat="4915999@c.us", until=timezone.now() + timedelta(minutes=30))
    PortalMembership.objects.filter(email="olga@globex.example").update(can_edit_templates=True)
    WhatsAppSession.objects.filter(tenant=acme).update(state=SessionState.QR_TIMEOUT)
    WorkerProcess.objects.filter(tenant=acme).update(desired_state=DesiredState.RUNNING, status=WorkerStatus.RUNNING)
    acme_epoch = WorkerProcess.objects.get(tenant=acme).epoch
    values = {"chat": "4915999@c.us", "template_id": str(template.pk), "uidb64": "MQ", "token": "x-y"}
    form = {"match": "exact", "pattern": "x", "body": "pwned", "priority": "0", "business_name": "B", "phone": "123456"}

    client = signed_in(outsider)
    checked = []
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "events":
            continue  # a stream: its own test
        kwargs = {name: values[name] for name in pattern.pattern.regex.groupindex}
        url = reverse(f"portal:{pattern.name}", kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(client, method)(url, form if method == "post" else None)
            assert response.status_code < 500, (method, url, response.status_code)
            body = response.content.decode(errors="replace")
            for leaked in [secret, "Acme", "acme hours reply", "4915999"]:
                if leaked == "4915999" and "4915999" in url:
                    continue
                assert leaked not in body or leaked in url, (method, url, leaked)
            checked.append((method, url, response.status_code))
        client = signed_in(outsider)  # sign-out and password views may have signed it out
    assert len(checked) == 2 * (len(urls.urlpatterns) - 1)
    assert ReplyTemplate.objects.get(pk=template.pk).body == "acme hours reply"
    assert ChatPause.objects.filter(tenant=acme).exists()
    assert WorkerProcess.objects.get(tenant=acme).epoch == acme_epoch
    statuses = {(method, url): status for method, url, status in checked}
    assert statuses[("post", f"/portal/templates/{template.pk}/")] == 404
    assert statuses[("post", f"/portal/templates/{template.pk}/delete/")] == 404
    assert statuses[("post", "/portal/chats/4915999@c.us/resume/")] == 404


def test_password_reset_requests_are_throttled(alice, settings, redis_client):
    settings.PORTAL_RESET_RATE = "2/hour"
    redis_client.flushdb()
    client = Client()
    for _ in range(2):
        assert client.post("/portal/password-reset/", {"email": "alice@acme.example"}).status_code == 302
    refused = client.post("/portal/password-reset/", {"email": "alice@acme.example"})
    assert refused.status_code == 429
    assert "Too many reset requests" in refused.content.decode()
    assert len(mail.outbox) == 2


def test_an_operator_grants_template_editing_through_the_api(api, acme, alice):
    url = f"/api/admin/tenants/{acme.pk}/members"
    granted = api.post(url, {"email": "alice@acme.example", "can_edit_templates": True}, format="json")
    assert granted.status_code == 200
    assert granted.json()["can_edit_templates"] is True
    client = signed_in(alice)
    assert client.post("/portal/templates/new/", {"match": "exact", "pattern": "menu", "body": "Espresso",
                                                   "priority": 0, "enabled": "on"}).status_code == 302
    # Linking again without the field leaves it as it is; false takes it back.
    assert api.post(url, {"email": "alice@acme.example"}, format="json").json()["can_edit_templates"] is True
    assert api.post(url, {"email": "alice@acme.example", "can_edit_templates": False},
                    format="json").json()["can_edit_templates"] is False
    assert client.post("/portal/templates/new/", {"match": "exact", "pattern": "x", "body": "y",
                                                   "priority": 0}).status_code == 403
    new = api.post(url, {"email": "bob@acme.example"}, format="json")
    assert (new.status_code, new.json()["can_edit_templates"]) == (201, False)


def test_a_member_unlinks_their_phone_and_another_tenants_member_cannot(alice, acme, outsider, settings,
                                                                        tmp_path):
    settings.SESSIONS_PATH = tmp_path
    client = signed_in(alice)
    assert "Unlink this phone" not in client.get("/portal/").content.decode(), "nothing to unlink yet"
    assert client.post("/portal/unlink/").status_code == 409
    services.session_transition(tenant_id=acme.pk, to=SessionState.CONNECTED, phone="15550001111")
    assert "Unlink this phone" in client.get("/portal/").content.decode()
    assert signed_in(outsider).post("/portal/unlink/").status_code == 409, "the outsider's own tenant: not linked"
    assert WhatsAppSession.objects.get(tenant=acme).state == SessionState.CONNECTED
    response = client.post("/portal/unlink/", follow=True)
    assert "Your phone is unlinked" in response.content.decode()
    assert WhatsAppSession.objects.get(tenant=acme).state == SessionState.LOGGED_OUT
    assert Client().post("/portal/unlink/")["Location"].startswith("/portal/sign-in/")
