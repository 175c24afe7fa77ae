"""The message log's claims and status machine."""

from __future__ import annotations

import pytest

from flowhq.errors import IllegalTransition, ValidationFailed
from tenants.messages import (
    incoming_claim,
    incoming_edit,
    incoming_revoke,
    message_transition,
    outgoing_create,
    phone_message_record,
    reply_claim,
    reply_message_id,
)
from tenants.models import MessageLog, MessageStatus

M = MessageStatus


def test_an_incoming_id_is_claimed_once(tenant, make_tenant):
    first = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    assert first is not None
    assert incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi") is None
    assert incoming_claim(tenant_id=make_tenant("Other").pk, message_id="W1", chat="491@c.us", body="hi")


def test_a_reply_claim_is_the_same_row_on_every_attempt(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    first, created = reply_claim(incoming=incoming, body="hello")
    again, created_again = reply_claim(incoming=incoming, body="hello")
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert first.message_id == reply_message_id(tenant.pk, "W1")
    assert (first.in_reply_to, first.status) == ("W1", M.QUEUED)


def test_reply_ids_differ_per_tenant_and_message():
    ids = {reply_message_id(t, m) for t in (1, 2) for m in ("a", "b")}
    assert len(ids) == 4
    assert all(i.startswith("3EB0") and len(i) == 24 for i in ids)


def test_completing_a_message_stamps_its_latency_and_refuses_to_reopen_it(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    message_transition(log_id=incoming.pk, to=M.RATE_LIMITED, error="waiting 10 ms")
    done = message_transition(log_id=incoming.pk, to=M.REPLIED, error="")
    assert done.completed_at is not None
    assert done.latency_ms is not None
    with pytest.raises(IllegalTransition):
        message_transition(log_id=incoming.pk, to=M.RATE_LIMITED)


@pytest.mark.parametrize(("to", "body"), [
    ("not-a-number", "x"), ("12", "x"), ("4917000000001", "   "),
    ("٤٩١٧٦١٢٣٤٥٦٧٨", "x"),  # Arabic-Indic digits pass str.isdigit(); no WhatsApp id has them
])
def test_an_outgoing_text_needs_a_number_and_a_body(tenant, to, body):
    with pytest.raises(ValidationFailed):
        outgoing_create(tenant=tenant, to=to, body=body)


def test_an_outgoing_text_is_queued_for_its_chat(tenant):
    entry = outgoing_create(tenant=tenant, to="+4917000000001", body="hi")
    assert (entry.chat, entry.status, entry.direction) == ("4917000000001@c.us", M.QUEUED, "out")


def test_a_message_logged_as_ignored_is_complete_at_once_with_its_reason(tenant):
    row = incoming_claim(tenant_id=tenant.pk, message_id="G1", chat="1203@g.us", body="hi", kind="chat",
                         author="491@c.us", ignored="messages in groups are not answered")
    assert (row.status, row.error, row.author, row.source) == (M.IGNORED, "messages in groups are not answered",
                                                               "491@c.us", "customer")
    assert row.completed_at is not None
    with pytest.raises(IllegalTransition):
        message_transition(log_id=row.pk, to=M.REPLIED)


def test_a_message_deleted_while_waiting_is_revoked_and_its_pending_reply_dropped(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    message_transition(log_id=incoming.pk, to=M.RATE_LIMITED)
    reply, _ = reply_claim(incoming=incoming, body="hello")
    revoked = incoming_revoke(tenant_id=tenant.pk, message_id="W1")
    assert revoked.status == M.REVOKED
    assert MessageLog.objects.get(pk=reply.pk).status == M.DROPPED
    assert incoming_revoke(tenant_id=tenant.pk, message_id="W1") is None, "only a waiting message is revoked"


def test_a_message_already_answered_is_not_revoked(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    message_transition(log_id=incoming.pk, to=M.REPLIED)
    assert incoming_revoke(tenant_id=tenant.pk, message_id="W1") is None
    assert MessageLog.objects.get(pk=incoming.pk).status == M.REPLIED


def test_an_edit_changes_the_text_of_a_waiting_message_only(tenant):
    waiting = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    assert incoming_edit(tenant_id=tenant.pk, message_id="W1", body="hours?") is True
    assert MessageLog.objects.get(pk=waiting.pk).body == "hours?"
    message_transition(log_id=waiting.pk, to=M.NO_MATCH)
    assert incoming_edit(tenant_id=tenant.pk, message_id="W1", body="too late") is False
    assert MessageLog.objects.get(pk=waiting.pk).body == "hours?"


def test_a_message_typed_on_the_phone_is_logged_once_as_sent_from_the_phone(tenant):
    row = phone_message_record(tenant_id=tenant.pk, message_id="P1", chat="491@c.us", body="I'll help you")
    assert (row.direction, row.source, row.status) == ("out", "phone", M.SENT)
    assert phone_message_record(tenant_id=tenant.pk, message_id="P1", chat="491@c.us", body="again") is None


def test_outgoing_rows_say_who_wrote_them(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    assert reply_claim(incoming=incoming, body="hello")[0].source == "bot"
    assert outgoing_create(tenant=tenant, to="4917000000001", body="hi").source == "api"
