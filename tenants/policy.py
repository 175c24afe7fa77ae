"""Which incoming messages a tenant's bot answers, which it only logs, and which are not its business.

A real WhatsApp account receives far more than customers' texts: status posts of every contact,
channel posts, group chatter, reactions, media, messages still being decrypted. Bots that answered
those (replies to Status, to groups) are what users of other WhatsApp bots report as their worst
failures, so the default is narrow. Pure: the bot calls `decide` with what the page said.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Kinds whose text is a caption.
MEDIA_KINDS = frozenset({"image", "video", "document", "audio", "ptt", "sticker"})
# Not something a person wrote: WhatsApp's own notifications and protocol messages.
SYSTEM_KINDS = frozenset({
    "revoked", "protocol", "e2e_notification", "notification", "notification_template", "gp2", "call_log",
    "reaction", "ciphertext_failed", "pinned_message", "keep_in_chat",
})


class Verdict(Enum):
    ANSWER = "answer"
    IGNORE = "ignore"  # logged as IGNORED with the reason
    SKIP = "skip"  # not logged: not a message to the business


@dataclass(frozen=True)
class ReplyPolicy:
    """The tenant's choices (the rest is fixed)."""

    reply_in_groups: bool = False
    reply_to_media: bool = True


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""


def decide(*, kind: str, status: bool, newsletter: bool, group: bool, broadcast: bool,
           policy: ReplyPolicy) -> Decision:
    """What to do with one incoming message (not one the owner sent)."""
    if status:
        return Decision(Verdict.SKIP, "a status post")
    if newsletter:
        return Decision(Verdict.SKIP, "a channel post")
    if broadcast:
        return Decision(Verdict.SKIP, "a broadcast")
    if kind in SYSTEM_KINDS:
        return Decision(Verdict.SKIP, f"a {kind} notification")
    if kind == "ciphertext":
        return Decision(Verdict.IGNORE, "WhatsApp Web could not decrypt this message")
    if group and not policy.reply_in_groups:
        return Decision(Verdict.IGNORE, "messages in groups are not answered (tenant setting)")
    if kind in MEDIA_KINDS:
        if policy.reply_to_media:
            return Decision(Verdict.ANSWER)
        return Decision(Verdict.IGNORE, f"{kind} messages are not answered (tenant setting)")
    if kind == "chat":
        return Decision(Verdict.ANSWER)
    return Decision(Verdict.IGNORE, f"{kind} messages are not answered")
