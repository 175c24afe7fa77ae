"""Which incoming messages a bot answers, logs or leaves alone (tenants/policy.py)."""

from __future__ import annotations

import pytest

from tenants.policy import ReplyPolicy, Verdict, decide

DEFAULT = ReplyPolicy()
FLAGS = {"status": False, "newsletter": False, "group": False, "broadcast": False}


def verdict(kind: str = "chat", policy: ReplyPolicy = DEFAULT, **flags: bool) -> Verdict:
    return decide(kind=kind, policy=policy, **{**FLAGS, **flags}).verdict


def test_a_direct_text_is_answered():
    assert verdict() is Verdict.ANSWER


@pytest.mark.parametrize("flag", ["status", "newsletter", "broadcast"])
def test_status_posts_channel_posts_and_broadcasts_are_never_answered_nor_logged(flag):
    assert verdict(**{flag: True}) is Verdict.SKIP
    assert verdict(policy=ReplyPolicy(reply_in_groups=True, reply_to_media=True), **{flag: True}) is Verdict.SKIP


@pytest.mark.parametrize("kind", ["reaction", "revoked", "e2e_notification", "gp2", "protocol", "call_log"])
def test_whatsapps_own_notifications_and_reactions_are_not_the_bots_business(kind):
    assert verdict(kind) is Verdict.SKIP


def test_groups_are_logged_and_answered_only_when_the_tenant_says_so():
    assert verdict(group=True) is Verdict.IGNORE
    assert "groups" in decide(kind="chat", policy=DEFAULT, **{**FLAGS, "group": True}).reason
    assert verdict(group=True, policy=ReplyPolicy(reply_in_groups=True)) is Verdict.ANSWER


@pytest.mark.parametrize("kind", ["image", "video", "document"])
def test_media_is_answered_by_its_caption_unless_the_tenant_turns_it_off(kind):
    assert verdict(kind) is Verdict.ANSWER
    assert verdict(kind, policy=ReplyPolicy(reply_to_media=False)) is Verdict.IGNORE


def test_an_undecryptable_message_is_logged_not_dropped():
    decision = decide(kind="ciphertext", policy=DEFAULT, **FLAGS)
    assert decision.verdict is Verdict.IGNORE
    assert "decrypt" in decision.reason


@pytest.mark.parametrize("kind", ["location", "vcard", "poll_creation"])
def test_other_kinds_are_logged_as_not_answered(kind):
    assert verdict(kind) is Verdict.IGNORE
