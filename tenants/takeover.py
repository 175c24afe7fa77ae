"""Human takeover: when the owner answers a chat from the linked phone, the bot keeps quiet in it.

The bot starts (or renews) a chat's pause for HUMAN_TAKEOVER_MINUTES from the moment the owner
wrote; operators and the portal see the pause and may end it early. A pause is a row with its
deadline, so "is this chat paused?" is one indexed lookup, and ending one is deleting it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from tenants import signals
from tenants.models import ChatPause

OWNER_REPLIED = "the owner answered from the phone"


def chat_pause_renew(*, tenant_id: int, chat: str, until: datetime, reason: str = OWNER_REPLIED) -> ChatPause:
    """Pause the bot in `chat` until `until`, or later if it is paused longer already."""
    for _ in range(2):
        try:
            with transaction.atomic():
                pause, created = ChatPause.objects.select_for_update().get_or_create(
                    tenant_id=tenant_id, chat=chat, defaults={"paused_until": until, "reason": reason[:200]}
                )
                if not created and pause.paused_until < until:
                    pause.paused_until, pause.reason = until, reason[:200]
                    pause.save(update_fields=["paused_until", "reason", "updated_at"])
                    created = True  # renewed: announced like a new pause
                if created:
                    signals.chat_paused.send(sender=ChatPause, pause=pause)
                return pause
        except IntegrityError:
            continue  # created by a concurrent call: lock that one
    raise RuntimeError("unreachable: the pause row exists after a conflict")


def chat_pause_end(*, tenant_id: int, chat: str) -> bool:
    """End the pause of `chat` (the bot answers its next message); False if it was not paused."""
    with transaction.atomic():
        deleted, _ = ChatPause.objects.filter(tenant_id=tenant_id, chat=chat).delete()
        if deleted:
            signals.chat_resumed.send(sender=ChatPause, tenant_id=tenant_id, chat=chat)
    return bool(deleted)


def chat_pause_active(*, tenant_id: int, chat: str, now: datetime | None = None) -> ChatPause | None:
    """The chat's pause if it is still running."""
    return ChatPause.objects.filter(tenant_id=tenant_id, chat=chat, paused_until__gt=now or timezone.now()).first()


def chat_pause_list(*, tenant_id: int, now: datetime | None = None) -> QuerySet[ChatPause]:
    """The tenant's running pauses, the longest first."""
    return ChatPause.objects.filter(tenant_id=tenant_id, paused_until__gt=now or timezone.now()).order_by(
        "-paused_until", "chat"
    )
