"""The message log's claims and status machine."""

from __future__ import annotations

import pytest

from flowhq.errors import IllegalTransition, ValidationFailed
from tenants.messages import (
    incoming_claim,
    message_transition,
    outgoing_create,
    reply_claim,
    reply_message_id,
)
from tenants.models import MessageStatus

M = MessageStatus


def test_an_incoming_id_is_claimed_once(tenant, make_tenant):
    first = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    assert first is not None
    assert incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi") is None
    assert incoming_claim(tenant_id=make_tenant("Other").pk, message_id="W1", chat="491@c.us", body="hi")


def test_a_reply_claim_is_the_same_row_on_every_attempt(tenant):
    incoming = incoming_claim(tenant_id=tenant.pk, message_id="W1", chat="491@c.us", body="hi")
    first = reply_claim(incoming=incoming, body="hello")
    again = reply_claim(incoming=incoming, body="hello")
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


@pytest.mark.parametrize(("to", "body"), [("not-a-number", "x"), ("12", "x"), ("4917000000001", "   ")])
def test_an_outgoing_text_needs_a_number_and_a_body(tenant, to, body):
    with pytest.raises(ValidationFailed):
        outgoing_create(tenant=tenant, to=to, body=body)


def test_an_outgoing_text_is_queued_for_its_chat(tenant):
    entry = outgoing_create(tenant=tenant, to="+4917000000001", body="hi")
    assert (entry.chat, entry.status, entry.direction) == ("4917000000001@c.us", M.QUEUED, "out")
