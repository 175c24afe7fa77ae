"""Human takeover, for operators: the chats the bot keeps quiet in, and ending a pause early."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from tenants import selectors
from tenants.api.serializers import ChatPauseOut
from tenants.api.views import paginated
from tenants.models import ChatPause
from tenants.takeover import chat_pause_active, chat_pause_end, chat_pause_list

TAGS = ["admin"]


def chat_of(value: str) -> str:
    """A number in a URL is its 1:1 chat."""
    return value if "@" in value else f"{value}@c.us"


def pause_data(chat: str, pause: ChatPause | None) -> dict[str, Any]:
    return {"chat": chat, "paused": pause is not None, "paused_until": pause.paused_until if pause else None,
            "reason": pause.reason if pause else ""}


class PauseListOut(ChatPauseOut):
    """Serialises ChatPause rows (all of them running)."""

    def to_representation(self, instance: ChatPause) -> dict[str, Any]:
        return super().to_representation(pause_data(instance.chat, instance))


def pause_read(*, tenant_id: int, chat: str) -> Response:
    chat = chat_of(chat)
    return Response(ChatPauseOut(pause_data(chat, chat_pause_active(tenant_id=tenant_id, chat=chat))).data)


def pause_end(*, tenant_id: int, chat: str) -> Response:
    chat = chat_of(chat)
    chat_pause_end(tenant_id=tenant_id, chat=chat)
    return Response(ChatPauseOut(pause_data(chat, None)).data)


class ChatPauseDetail(APIView):
    @extend_schema(tags=TAGS, summary="A chat's human-takeover pause (the bot keeps quiet there until it ends)",
                   responses=ChatPauseOut)
    def get(self, request: Request, tenant_id: int, chat: str) -> Response:
        return pause_read(tenant_id=selectors.tenant_get(tenant_id=tenant_id).pk, chat=chat)

    @extend_schema(tags=TAGS, summary="End a chat's pause: the bot answers its next message; idempotent",
                   responses={200: ChatPauseOut})
    def delete(self, request: Request, tenant_id: int, chat: str) -> Response:
        return pause_end(tenant_id=selectors.tenant_get(tenant_id=tenant_id).pk, chat=chat)


class ChatPauseList(APIView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="The chats paused by human takeover, longest pause first",
                   responses=ChatPauseOut(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return paginated(request, self, chat_pause_list(tenant_id=tenant.pk), PauseListOut)
