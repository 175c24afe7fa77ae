"""Portal API: a tenant's own status, QR code and message log, and setup requests.

Every view authenticates the portal backend by `X-Portal-Key` and acts for the
user in `X-User-Email` (portal.auth). "current" is the tenant of the user's
membership; there is no tenant id in any URL, so a user cannot even name
another tenant.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.pagination import Pagination
from flowhq.api.serializers import validated
from flowhq.errors import NotFound
from portal import events
from portal.auth import IsPortalUser, PortalKeyAuthentication, PortalUser
from portal.serializers import PortalStatusOut, SetupRequestIn, status_data
from tenants import selectors, services
from tenants.api.chat_views import PauseListOut, pause_end, pause_read
from tenants.api.serializers import ChatPauseOut, MessageLogFilterIn, MessageLogOut, QrOut, SetupRequestOut
from tenants.api.views import message_log_page, paginated, session_of
from tenants.models import Tenant
from tenants.takeover import chat_pause_list
from workers import linking
from workers.api.serializers import SessionCommandOut
from workers.api.views import link_response

TAGS = ["portal"]


class NoTenant(NotFound):
    code = "no_tenant"


class NoSetupRequest(NotFound):
    code = "no_setup_request"


class PortalView(APIView):
    authentication_classes = [PortalKeyAuthentication]
    permission_classes = [IsPortalUser]

    def email(self) -> str:
        user = self.request.user
        assert isinstance(user, PortalUser)
        return user.email

    def current_tenant(self) -> Tenant:
        tenant = selectors.tenant_for_member(email=self.email())
        if tenant is None:
            # 404, not 403: the answer is the same whether or not any tenant exists.
            raise NoTenant("You are not a member of any tenant.")
        return tenant


class PortalStatus(PortalView):
    @extend_schema(tags=TAGS, summary="The user's tenant, its session, worker and setup request",
                   responses=PortalStatusOut)
    def get(self, request: Request) -> Response:
        tenant = self.current_tenant()
        setup_request = selectors.setup_request_latest(email=self.email())
        return Response(status_data(tenant=tenant, setup_request=setup_request))


class PortalQr(PortalView):
    @extend_schema(tags=TAGS, summary="The QR code to scan (a PNG data URI) or null", responses=QrOut)
    def get(self, request: Request) -> Response:
        tenant = self.current_tenant()
        return Response(QrOut(session_of(tenant)).data)


class PortalLogs(PortalView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="The user's tenant's own message log, newest first",
                   parameters=[MessageLogFilterIn], responses=MessageLogOut(many=True))
    def get(self, request: Request) -> Response:
        return message_log_page(request, self, tenant_id=self.current_tenant().pk)


class PortalSetupRequest(PortalView):
    @extend_schema(tags=TAGS, summary="The user's latest setup request", responses=SetupRequestOut)
    def get(self, request: Request) -> Response:
        setup_request = selectors.setup_request_latest(email=self.email())
        if setup_request is None:
            raise NoSetupRequest("You have not asked for a setup yet.")
        return Response(SetupRequestOut(setup_request).data)

    @extend_schema(tags=TAGS, summary="Ask for a bot to be set up (users without a tenant)",
                   request=SetupRequestIn, responses={201: SetupRequestOut})
    def post(self, request: Request) -> Response:
        data = validated(SetupRequestIn, request.data)
        setup_request = services.setup_request_submit(email=self.email(), **data)
        return Response(SetupRequestOut(setup_request).data, status=status.HTTP_201_CREATED)


class AlwaysJSONForErrors(BaseContentNegotiation):
    """EventSource sends `Accept: text/event-stream`: never a 406; errors are JSON."""

    def select_renderer(self, request: Request, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


# One event of the stream (the OpenAPI 3.2 reading of a text/event-stream schema).
SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["status", "qr", "gone"]},
        "data": {
            "type": "string",
            "description": "One line of JSON: PortalStatusOut for `status`, QrOut for `qr`, Error for `gone`.",
        },
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["event", "data"],
}


class PortalEvents(PortalView):
    content_negotiation_class = AlwaysJSONForErrors

    @extend_schema(
        tags=TAGS,
        summary="Server-Sent Events: `status` and `qr` as they change",
        description=(
            "A `text/event-stream`. Events: `status` (the body of GET /status), `qr` (the body of "
            "GET /qr), `gone` (membership revoked; the stream ends). Comment lines keep the "
            "connection alive. The stream ends after a bounded lifetime; the `retry:` hint tells "
            "the client when to reconnect. A web process serves a bounded number of streams at once; "
            "beyond it the answer is 503 `too_many_streams` with `Retry-After` (poll /status and /qr)."
        ),
        responses={(200, "text/event-stream"): OpenApiResponse(SSE_EVENT_SCHEMA, description="The stream.")},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        self.current_tenant()  # no tenant: a JSON 404 before the stream starts
        return events.stream_response(email=self.email())


class PortalChatPause(PortalView):
    @extend_schema(tags=TAGS, summary="Whether the bot is paused in one of the tenant's chats (human takeover), and until when",
                   responses=ChatPauseOut)
    def get(self, request: Request, chat: str) -> Response:
        return pause_read(tenant_id=self.current_tenant().pk, chat=chat)

    @extend_schema(tags=TAGS, summary="Resume the bot in a chat now; idempotent", responses={200: ChatPauseOut})
    def delete(self, request: Request, chat: str) -> Response:
        return pause_end(tenant_id=self.current_tenant().pk, chat=chat)


class PortalChatPauses(PortalView):
    pagination_class = Pagination  # read by the schema generator

    @extend_schema(tags=TAGS, summary="The chats paused because the owner answered from the phone",
                   responses=ChatPauseOut(many=True))
    def get(self, request: Request) -> Response:
        return paginated(request, self, chat_pause_list(tenant_id=self.current_tenant().pk), PauseListOut)


class PortalSessionLogout(PortalView):
    @extend_schema(
        tags=TAGS, summary="Log out the user's own linked WhatsApp device",
        description="The tenant unlinks the phone from its bot (as the admin's `session/logout`): 202 while the bot "
        "logs out and shows a new QR code, 200 when no worker was running (the next start shows a QR); 409 if "
        "WhatsApp is not linked.",
        request=None,
        responses={202: OpenApiResponse(SessionCommandOut, description="The bot is logging out."),
                   200: OpenApiResponse(SessionCommandOut, description="Logged out (no worker was running)."),
                   409: OpenApiResponse(description="Not linked, or the worker is between states.")},
    )
    def post(self, request: Request) -> Response:
        tenant = self.current_tenant()
        return link_response(linking.session_logout(tenant_id=tenant.pk,
                                                    reason=f"logout requested by {self.email()} in the portal"))
