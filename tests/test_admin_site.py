"""The Django admin: what operators see and do, through the test client as a staff superuser."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.forms import CheckboxInput
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.models import ChatPause, MessageLog, PortalMembership, ReplyTemplate, SetupRequest, Tenant
from tenants.states import SessionState
from tenants.takeover import chat_pause_renew
from tests.fleet.factories import dead_host, live_host
from workers import lifecycle
from workers.models import FleetHost, ProfileBackup, WorkerProcess, WorkerTransition

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
QR_IMG = f'<img src="{PNG}"'


# --- helpers ----------------------------------------------------------------------------


def change_url(tenant: Tenant) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant.pk])


def button_url(tenant: Tenant, verb: str) -> str:
    return reverse("admin:tenants_tenant_lifecycle", args=[tenant.pk, verb])


def notes(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def page_data(response: Any) -> dict[str, Any]:
    """What the change page posts back when nothing is edited: its form, then every inline's forms."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, Any] = {}
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field.widget, CheckboxInput):
                if value:
                    data[form.add_prefix(name)] = "on"
            elif value is not None:
                data[form.add_prefix(name)] = value
    return data


def add_template_row(data: dict[str, Any], **fields: Any) -> None:
    index = int(data["templates-TOTAL_FORMS"])
    data["templates-TOTAL_FORMS"] = str(index + 1)
    for name, value in fields.items():
        if value is True:
            value = "on"
        if value is not False:
            data[f"templates-{index}-{name}"] = value


def sent_to_login(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/admin/login/")


def show_qr(tenant: Tenant) -> None:
    services.session_transition(
        tenant_id=tenant.pk, to=SessionState.QR_READY, qr=PNG, qr_issued_at=timezone.now(), qr_count=1
    )


def commands_for(redis_client: Any, tenant: Tenant) -> list[str]:
    """Task names waiting on the tenant's queue: kombu's Redis transport keeps a queue as a list of that name."""
    return [json.loads(raw)["headers"]["task"] for raw in redis_client.lrange(f"tenant.{tenant.pk}", 0, -1)]


@pytest.fixture
def staff(admin_client: Client) -> Client:
    """Logged in as a staff superuser."""
    return admin_client


@pytest.fixture
def outsider(db) -> Client:
    """Logged in, but not staff."""
    user = get_user_model().objects.create_user(username="customer", password="pw-customer-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def queues(redis_client, tenant):
    redis_client.delete(f"tenant.{tenant.pk}")
    yield redis_client
    redis_client.delete(f"tenant.{tenant.pk}")


@pytest.fixture
def everything(tenant, make_tenant, admin_user) -> dict[str, Any]:
    """One of each record the admin shows."""
    live_host("h-live")
    dead_host("h-dead")
    lifecycle.worker_start(tenant_id=tenant.pk)
    show_qr(tenant)
    template = services.template_create(tenant=tenant, match="keyword", pattern="price", body="Hi {name}!")
    message = MessageLog.objects.create(
        tenant=tenant, message_id="m1", chat="4917000000001", direction="in", body="price?", status="replied"
    )
    membership, _ = services.membership_add(tenant=tenant, email="owner@acme.example")
    setup = services.setup_request_submit(email="new@initech.example", business_name="Initech", phone="1555")
    backup = ProfileBackup.objects.create(tenant=tenant, data=b"\x1f\x8b" * 1000, digest="ab" * 32, size=2000, epoch=1,
                                          host="h-live")
    pause = chat_pause_renew(tenant_id=tenant.pk, chat="4917000000001@c.us", until=timezone.now() + timedelta(minutes=9))
    return {"tenant": tenant, "template": template, "message": message, "membership": membership, "setup": setup,
            "backup": backup, "pause": pause}


# --- every page renders ----------------------------------------------------------------------


def test_every_changelist_and_add_page_renders(staff, everything):
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        response = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert response.status_code == 200, meta.label
        if model_admin.has_add_permission(response.wsgi_request):
            response = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
            assert response.status_code == 200, f"add {meta.label}"


def test_every_change_page_of_the_domain_renders(staff, everything):
    tenant = everything["tenant"]
    worker = WorkerProcess.objects.get(tenant=tenant)
    pages = [
        change_url(tenant),
        reverse("admin:tenants_whatsappsession_change", args=[tenant.session.pk]),
        reverse("admin:tenants_replytemplate_change", args=[everything["template"].pk]),
        reverse("admin:tenants_messagelog_change", args=[everything["message"].pk]),
        reverse("admin:tenants_portalmembership_change", args=[everything["membership"].pk]),
        reverse("admin:tenants_setuprequest_change", args=[everything["setup"].pk]),
        reverse("admin:workers_workerprocess_change", args=[worker.pk]),
        reverse("admin:workers_workertransition_change", args=[WorkerTransition.objects.first().pk]),
        reverse("admin:workers_fleethost_change", args=[FleetHost.objects.get(name="h-live").pk]),
        reverse("admin:workers_profilebackup_change", args=[everything["backup"].pk]),
        reverse("admin:tenants_chatpause_change", args=[everything["pause"].pk]),
    ]
    for url in pages:
        assert staff.get(url).status_code == 200, url


def test_a_profile_backup_is_listed_without_its_data_and_can_be_deleted(staff, everything):
    backup = everything["backup"]
    page = staff.get(reverse("admin:workers_profilebackup_changelist")).content.decode()
    assert "h-live" in page
    change = staff.get(reverse("admin:workers_profilebackup_change", args=[backup.pk])).content.decode()
    assert "field-digest" in change
    assert "field-data" not in change
    response = staff.post(reverse("admin:workers_profilebackup_delete", args=[backup.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not ProfileBackup.objects.exists()


def test_the_tenant_changelist_shows_badges_heartbeat_and_host(staff, everything):
    tenant = everything["tenant"]
    WorkerProcess.objects.filter(tenant=tenant).update(
        heartbeat_at=timezone.now() - timedelta(seconds=3), pid=4242, stale_after=timezone.now() + timedelta(minutes=1)
    )
    services.tenant_transition(tenant_id=tenant.pk, to="ERROR", reason="chromium crashed")
    page = staff.get(reverse("admin:tenants_tenant_changelist")).content.decode()
    assert '<span class="fhq-badge fhq-red" title="chromium crashed">Error</span>' in page
    assert '<span class="fhq-badge fhq-blue" title="">QR ready</span>' in page
    assert "STARTING · pid 4242" in page
    assert "3s ago" in page
    assert "h-live" in page
    assert "tenants/admin.css" in page


def test_the_tenant_changelist_filters_and_searches(staff, everything, make_tenant):
    make_tenant("Globex")
    url = reverse("admin:tenants_tenant_changelist")
    for query in ("q=acme", "q=owner%40acme.example", "status__exact=STARTING", "session__state__exact=QR_READY",
                  "worker__status__exact=STARTING", "heartbeat=stale", "heartbeat=fresh", "worker__host__exact=h-live"):
        response = staff.get(f"{url}?{query}")
        assert response.status_code == 200, query
        assert response.context["cl"].result_count >= (0 if query.startswith("heartbeat") else 1), query
    response = staff.get(f"{url}?q=globex")
    assert [t.name for t in response.context["cl"].result_list] == ["Globex"]


def test_the_tenant_changelist_costs_a_fixed_number_of_queries(staff, make_tenant, django_assert_max_num_queries):
    url = reverse("admin:tenants_tenant_changelist")
    make_tenant("First")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(url).status_code == 200
        return len(captured)

    few = queries()
    live_host("h1")
    for n in range(12):
        tenant = make_tenant(f"Tenant {n}")
        if n % 2:
            lifecycle.worker_start(tenant_id=tenant.pk)
    assert queries() == few
    with django_assert_max_num_queries(12):
        staff.get(url)


# --- the tenant page -------------------------------------------------------------------------


def test_the_tenant_page_shows_the_qr_while_the_session_waits_for_a_scan(staff, tenant):
    page = staff.get(change_url(tenant)).content.decode()
    assert "data:image/png;base64," not in page
    assert 'id="tenant-live"' in page  # the block the page refreshes
    show_qr(tenant)
    page = staff.get(change_url(tenant)).content.decode()
    assert QR_IMG in page
    assert "tenants/tenant_live.js" in page
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001")
    page = staff.get(change_url(tenant)).content.decode()
    assert "data:image/png;base64," not in page
    assert "4915100000001" in page


def test_the_live_fragment_follows_the_session(staff, tenant):
    url = reverse("admin:tenants_tenant_live", args=[tenant.pk])
    assert "data:image/png;base64," not in staff.get(url).content.decode()
    show_qr(tenant)
    response = staff.get(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert QR_IMG in response.content.decode()
    assert "<html" not in response.content.decode()  # a fragment, not a page
    assert staff.get(reverse("admin:tenants_tenant_live", args=[tenant.pk + 1000])).status_code == 404


def test_the_tenant_page_shows_worker_transitions_messages_templates_and_members(staff, everything):
    tenant = everything["tenant"]
    WorkerProcess.objects.filter(tenant=tenant).update(restart_count=3, last_error="out of memory")
    for n in range(25):
        MessageLog.objects.create(tenant=tenant, message_id=f"x{n}", chat="49170", direction="in", body=f"hello {n}",
                                  status="replied")
    response = staff.get(change_url(tenant))
    page = response.content.decode()
    assert "out of memory" in page
    assert "<td>STOPPED</td><td>STARTING</td><td>start requested</td>" in page  # the latest transition
    assert "hello 24" in page  # the latest 20 only
    assert "hello 5" in page
    assert "hello 4" not in page
    assert "owner@acme.example" in page
    assert 'value="price"' in page
    for verb in ("start", "stop", "restart", "force-restart"):
        assert f'action="{button_url(tenant, verb)}"' in page


def test_saving_the_tenant_page_unchanged_keeps_everything(staff, everything, queues):
    tenant = everything["tenant"]
    data = page_data(staff.get(change_url(tenant)))
    data["slug"] = "acme-corp"  # not a bot setting (the name, the rate limit and the policy are)
    response = staff.post(change_url(tenant), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    tenant.refresh_from_db()
    assert tenant.slug == "acme-corp"
    assert ReplyTemplate.objects.filter(tenant=tenant).count() == 1
    assert MessageLog.objects.filter(tenant=tenant).count() == 1
    assert commands_for(queues, tenant) == []  # no template changed: the bot is left alone


# --- lifecycle: actions and buttons ------------------------------------------------------------


def test_the_start_and_stop_buttons_call_the_lifecycle_services(staff, tenant):
    live_host("h1")
    response = staff.post(button_url(tenant, "start"))
    assert response.status_code == 302
    assert response["Location"] == change_url(tenant)
    assert notes(response) == [f"Start requested for Acme (#{tenant.pk}); the fleet agent carries it out."]
    worker = WorkerProcess.objects.get(tenant=tenant)
    assert (worker.desired_state, worker.status, worker.host) == ("RUNNING", "STARTING", "h1")
    staff.post(button_url(tenant, "stop"))
    worker.refresh_from_db()
    assert worker.desired_state == "STOPPED"


def test_start_on_a_running_worker_and_stop_on_a_stopped_one_say_already(staff, tenant):
    response = staff.post(button_url(tenant, "stop"), follow=True)
    assert notes(response) == [f"Acme (#{tenant.pk}): already stopped."]
    live_host("h1")
    lifecycle.worker_start(tenant_id=tenant.pk)
    WorkerProcess.objects.filter(tenant=tenant).update(status="RUNNING")
    response = staff.post(button_url(tenant, "start"), follow=True)
    assert notes(response) == [f"Acme (#{tenant.pk}): already running."]


def test_the_tenant_page_offers_a_new_qr_and_a_logout_in_one_click(staff, tenant, tmp_path, settings):
    page = staff.get(change_url(tenant)).content.decode()
    assert button_url(tenant, "new-qr") in page
    assert button_url(tenant, "logout") in page
    refused = staff.post(button_url(tenant, "logout"), follow=True)
    assert any("not linked" in note for note in notes(refused))
    live_host("h1")
    asked = staff.post(button_url(tenant, "new-qr"), follow=True)
    assert notes(asked) == [f"A new QR code requested for Acme (#{tenant.pk}); the fleet agent carries it out."]
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == "RUNNING"
    stopping = staff.post(button_url(tenant, "stop"), follow=True)  # STOPPING: the agent has not stopped it yet
    services.session_transition(tenant_id=tenant.pk, to=SessionState.CONNECTED, phone="4915100000001")
    between = staff.post(button_url(tenant, "logout"), follow=True)
    assert any("worker is stopping" in note for note in notes(between)), notes(stopping)
    WorkerProcess.objects.filter(tenant=tenant).update(status="STOPPED")  # as its agent records it
    settings.SESSIONS_PATH = tmp_path
    (tmp_path / str(tenant.pk)).mkdir()
    done = staff.post(button_url(tenant, "logout"), follow=True)
    assert notes(done) == [f"Acme (#{tenant.pk}): logged out."]
    tenant.session.refresh_from_db()
    assert (tenant.session.state, tenant.session.phone) == ("LOGGED_OUT", "")
    assert not (tmp_path / str(tenant.pk)).exists(), "the stored link is deleted: the next start shows a QR"


def test_restart_and_force_restart_buttons(staff, tenant):
    live_host("h1")
    lifecycle.worker_start(tenant_id=tenant.pk)
    epoch = WorkerProcess.objects.get(tenant=tenant).epoch
    staff.post(button_url(tenant, "restart"))
    staff.post(button_url(tenant, "force-restart"))
    worker = WorkerProcess.objects.get(tenant=tenant)
    assert worker.epoch == epoch + 2
    assert worker.force_requested


def test_a_refused_operation_is_a_message_not_an_error_page(staff, tenant):
    response = staff.post(button_url(tenant, "restart"), follow=True)
    assert response.status_code == 200
    assert any("Could not restart Acme" in note and "start it instead" in note for note in notes(response))
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == "STOPPED"


def test_starting_without_a_live_host_warns(staff, tenant):
    response = staff.post(button_url(tenant, "start"), follow=True)
    assert any("No live fleet host for Acme" in note for note in notes(response))


def test_the_buttons_accept_only_post_known_operations_and_existing_tenants(staff, tenant):
    assert staff.get(button_url(tenant, "start")).status_code == 405
    assert staff.post(button_url(tenant, "explode")).status_code == 404
    missing = reverse("admin:tenants_tenant_lifecycle", args=[tenant.pk + 1000, "start"])
    assert staff.post(missing).status_code == 404
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == "STOPPED"


def test_the_buttons_need_a_csrf_token(admin_user, tenant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(button_url(tenant, "start")).status_code == 403
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == "STOPPED"


def test_the_changelist_actions_start_and_stop_many_tenants(staff, make_tenant):
    live_host("h1")
    acme, globex = make_tenant("Acme"), make_tenant("Globex")
    url = reverse("admin:tenants_tenant_changelist")
    response = staff.post(url, {"action": "worker_start", "_selected_action": [acme.pk, globex.pk]}, follow=True)
    assert response.status_code == 200
    assert f"Start requested for Acme (#{acme.pk}), Globex (#{globex.pk})" in notes(response)[0]
    assert set(WorkerProcess.objects.values_list("desired_state", flat=True)) == {"RUNNING"}
    staff.post(url, {"action": "worker_stop", "_selected_action": [acme.pk]})
    assert WorkerProcess.objects.get(tenant=acme).desired_state == "STOPPED"
    assert WorkerProcess.objects.get(tenant=globex).desired_state == "RUNNING"


def test_the_worker_changelist_has_the_same_actions(staff, tenant):
    live_host("h1")
    worker = WorkerProcess.objects.get(tenant=tenant)
    url = reverse("admin:workers_workerprocess_changelist")
    response = staff.post(url, {"action": "worker_start", "_selected_action": [worker.pk]}, follow=True)
    assert "Start requested for Acme" in notes(response)[0]
    worker.refresh_from_db()
    assert worker.desired_state == "RUNNING"


def test_outsiders_are_sent_to_the_login_page(outsider, client, tenant):
    show_qr(tenant)
    urls = [reverse("admin:tenants_tenant_changelist"), change_url(tenant),
            reverse("admin:tenants_tenant_live", args=[tenant.pk])]
    for who in (outsider, client):
        for url in urls:
            assert sent_to_login(who.get(url)), url
        assert sent_to_login(who.post(button_url(tenant, "start")))
        assert sent_to_login(who.post(reverse("admin:tenants_tenant_changelist"),
                                      {"action": "worker_start", "_selected_action": [tenant.pk]}))
    assert WorkerProcess.objects.get(tenant=tenant).desired_state == "STOPPED"


# --- reply templates: the API's rules ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"match": "regex", "pattern": "(unclosed", "body": "Hi"}, "pattern", "regular expression"),
        ({"match": "regex", "pattern": "^(a+)+$", "body": "Hi"}, "pattern", "slow"),
        ({"match": "keyword", "pattern": "price", "body": "Hi {nmae}"}, "body", "Unknown placeholder"),
        ({"match": "exact", "pattern": "", "body": "Hi"}, "pattern", "needs a pattern"),
    ],
)
def test_an_invalid_template_in_the_inline_is_a_form_error_and_saves_nothing(staff, tenant, queues, fields, field,
                                                                              problem):
    data = page_data(staff.get(change_url(tenant)))
    add_template_row(data, priority="0", enabled=True, **fields)
    response = staff.post(change_url(tenant), data)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.model is ReplyTemplate
    errors = " ".join(formset.forms[0].errors.get(field, []))
    assert problem.lower() in errors.lower(), formset.errors
    assert 'class="errorlist' in response.content.decode()
    assert not ReplyTemplate.objects.exists()
    assert commands_for(queues, tenant) == []


@pytest.mark.django_db(transaction=True)
def test_a_valid_template_edit_in_the_inline_reloads_the_running_bot_once(
    staff, tenant, queues, django_capture_on_commit_callbacks
):
    template = services.template_create(tenant=tenant, match="keyword", pattern="price", body="It costs 5")
    queues.delete(f"tenant.{tenant.pk}")
    data = page_data(staff.get(change_url(tenant)))
    data["templates-0-body"] = "It costs 6, {name}"
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(change_url(tenant), data)
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.body == "It costs 6, {name}"
    assert commands_for(queues, tenant) == ["bot.reload_templates"]


@pytest.mark.django_db(transaction=True)
def test_templates_are_added_and_deleted_through_the_inline(staff, tenant, queues, django_capture_on_commit_callbacks):
    old = services.template_create(tenant=tenant, match="keyword", pattern="price", body="It costs 5")
    queues.delete(f"tenant.{tenant.pk}")
    data = page_data(staff.get(change_url(tenant)))
    data["templates-0-DELETE"] = "on"
    add_template_row(data, match="regex", pattern=r"^order \d+$", body="Checking {number}", priority="5", enabled=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(change_url(tenant), data)
    assert response.status_code == 302
    assert list(ReplyTemplate.objects.values_list("pattern", "priority")) == [(r"^order \d+$", 5)]
    assert not ReplyTemplate.objects.filter(pk=old.pk).exists()
    assert set(commands_for(queues, tenant)) == {"bot.reload_templates"}


@pytest.mark.django_db(transaction=True)
def test_the_template_admin_applies_the_same_rules(staff, tenant, queues, django_capture_on_commit_callbacks):
    add = reverse("admin:tenants_replytemplate_add")
    response = staff.post(add, {"tenant": tenant.pk, "match": "regex", "pattern": "[", "body": "x", "priority": 0})
    assert response.status_code == 200
    assert "pattern" in response.context["adminform"].form.errors
    assert not ReplyTemplate.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(add, {"tenant": tenant.pk, "match": "keyword", "pattern": "hours", "body": "9-5",
                                    "priority": 0, "enabled": "on"})
    assert response.status_code == 302
    template = ReplyTemplate.objects.get()
    assert (template.tenant, template.body) == (tenant, "9-5")
    assert commands_for(queues, tenant) == ["bot.reload_templates"]
    change = reverse("admin:tenants_replytemplate_change", args=[template.pk])
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("admin:tenants_replytemplate_delete", args=[template.pk]), {"post": "yes"})
    assert not ReplyTemplate.objects.exists()
    assert commands_for(queues, tenant) == ["bot.reload_templates"] * 2
    assert staff.get(change).status_code == 302  # gone: back to the list with a message


# --- tenants are created and deleted by the services ----------------------------------------------


def test_a_tenant_added_in_the_admin_gets_its_session_and_worker(staff):
    response = staff.post(reverse("admin:tenants_tenant_add"), {
        "name": "Umbrella", "slug": "", "rate_limit_per_minute": "",
        "templates-TOTAL_FORMS": "1", "templates-INITIAL_FORMS": "0",
        "templates-0-match": "default", "templates-0-body": "Hello from {tenant}", "templates-0-priority": "0",
        "templates-0-enabled": "on",
        "members-TOTAL_FORMS": "1", "members-INITIAL_FORMS": "0", "members-0-email": "boss@umbrella.example",
        "messages-TOTAL_FORMS": "0", "messages-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.context and response.context["errors"]
    tenant = Tenant.objects.get(name="Umbrella")
    assert tenant.slug == "umbrella"
    assert tenant.session.state == "NEW"
    assert tenant.worker.status == "STOPPED"
    assert tenant.templates.get().body == "Hello from {tenant}"
    assert tenant.members.get().email == "boss@umbrella.example"


def test_a_member_of_another_tenant_cannot_be_added(staff, tenant, make_tenant):
    other = make_tenant("Globex")
    services.membership_add(tenant=other, email="boss@globex.example")
    data = page_data(staff.get(change_url(tenant)))
    data.update({"members-TOTAL_FORMS": "1", "members-0-email": "BOSS@globex.example"})
    response = staff.post(change_url(tenant), data)
    assert response.status_code == 200
    assert "already a member of Globex" in response.content.decode()
    assert not PortalMembership.objects.filter(tenant=tenant).exists()


def test_the_same_email_twice_on_one_page_is_a_form_error(staff, tenant):
    data = page_data(staff.get(change_url(tenant)))
    data.update({"members-TOTAL_FORMS": "2", "members-0-email": "a@acme.example", "members-1-email": "A@acme.example"})
    response = staff.post(change_url(tenant), data)
    assert response.status_code == 200
    assert "A@acme.example is listed twice." in response.content.decode()
    assert not PortalMembership.objects.exists()


def test_a_running_tenant_cannot_be_deleted(staff, tenant):
    live_host("h1")
    lifecycle.worker_start(tenant_id=tenant.pk)
    response = staff.post(reverse("admin:tenants_tenant_delete", args=[tenant.pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("Stop the tenant's worker" in note for note in notes(response))
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    action_form = staff.get(reverse("admin:tenants_tenant_changelist")).context["action_form"]
    assert "delete_selected" not in [name for name, _ in action_form.fields["action"].choices]


def test_a_stopped_tenant_is_deleted(staff, tenant):
    response = staff.post(reverse("admin:tenants_tenant_delete", args=[tenant.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.exists()


# --- read-only records ------------------------------------------------------------------------------


def test_the_message_log_is_view_only_with_filters_and_dates(staff, everything):
    message = everything["message"]
    url = reverse("admin:tenants_messagelog_changelist")
    assert staff.get(reverse("admin:tenants_messagelog_add")).status_code == 403
    response = staff.get(f"{url}?direction__exact=in&status__exact=replied&tenant__id__exact={message.tenant_id}"
                         f"&q=price&created_at__year={message.created_at.year}")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [message]
    change = reverse("admin:tenants_messagelog_change", args=[message.pk])
    staff.post(change, {"body": "tampered"})
    message.refresh_from_db()
    assert message.body == "price?"


def test_fleet_hosts_show_liveness_and_free_capacity(staff, tenant):
    live_host("h-live", capacity=5)
    dead_host("h-dead")
    lifecycle.worker_start(tenant_id=tenant.pk)
    response = staff.get(reverse("admin:workers_fleethost_changelist"))
    rows = {host.name: host for host in response.context["cl"].result_list}
    assert (rows["h-live"].assigned, rows["h-live"].free) == (1, 4)
    page = response.content.decode()
    assert '<span class="fhq-badge fhq-green" title="">live</span>' in page
    assert '<span class="fhq-badge fhq-red" title="no heartbeat since 5 min ago">stale</span>' in page


def test_setup_requests_keep_their_actions(staff):
    pending = SetupRequest.objects.create(email="a@initech.example", business_name="Initech", phone="1555")
    response = staff.post(reverse("admin:tenants_setuprequest_changelist"),
                          {"action": "approve", "_selected_action": [pending.pk]}, follow=True)
    assert any("Approved Initech" in note for note in notes(response))



def test_the_message_policy_is_edited_on_the_tenant_page_and_reloads_the_bot(
        staff, tenant, queues, django_capture_on_commit_callbacks):
    data = page_data(staff.get(change_url(tenant)))
    data["reply_in_groups"] = "on"
    data.pop("reply_to_media", None)  # an unticked checkbox is not sent
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(change_url(tenant), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    tenant.refresh_from_db()
    assert (tenant.reply_in_groups, tenant.reply_to_media) == (True, False)
    assert commands_for(queues, tenant) == ["bot.reload_templates"]


def test_an_operator_ends_chat_pauses_from_the_admin(staff, everything):
    pause = everything["pause"]
    url = reverse("admin:tenants_chatpause_changelist")
    page = staff.get(url).content.decode()
    assert pause.chat in page
    response = staff.post(url, {"action": "end", "_selected_action": [pause.pk]}, follow=True)
    assert "Ended 1 pause(s)." in response.content.decode()
    assert not ChatPause.objects.filter(pk=pause.pk).exists()
