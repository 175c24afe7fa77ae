"""Control-plane API for a tenant's worker: lifecycle commands, its record, and sending (staff only)."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.serializers import validated
from tenants.api.serializers import MessageLogOut, SendMessageIn
from tenants.selectors import tenant_get
from workers import commands, lifecycle, linking
from workers.api.serializers import SessionCommandOut, WorkerCommandOut, WorkerOut

TAGS = ["admin: worker"]


class WorkerDetail(APIView):
    @extend_schema(tags=TAGS, summary="The tenant's worker record", responses=WorkerOut)
    def get(self, request: Request, tenant_id: int) -> Response:
        return Response(WorkerOut(tenant_get(tenant_id=tenant_id).worker).data)


class _WorkerCommand(APIView):
    command: Callable[..., lifecycle.Outcome]
    verb: str

    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        outcome = type(self).command(tenant_id=tenant.pk, reason=f"{self.verb} requested by {request.user}")
        return command_response(outcome)


def command_response(outcome: lifecycle.Outcome) -> Response:
    """202 with the record when the command set a change going; 200 when there was nothing to do."""
    outcome.worker.message = outcome.message  # type: ignore[attr-defined]
    return Response(WorkerCommandOut(outcome.worker).data, status=202 if outcome.changed else 200)


def _command(service: Callable[..., lifecycle.Outcome], verb: str, summary: str, description: str,
             *, idempotent: bool) -> type[_WorkerCommand]:
    responses = {202: OpenApiResponse(WorkerCommandOut, description=f"{verb.capitalize()} requested; the fleet "
                                      "agent carries it out.")}
    if idempotent:
        responses[200] = OpenApiResponse(WorkerCommandOut, description="Nothing to do: the worker already is "
                                         "where asked (`message` says so).")
    else:
        responses[409] = OpenApiResponse(description="The worker is stopped: start it instead.")
    # Each view gets its own `post`: extend_schema on a shared function would give every
    # operation the description of the last one decorated.
    def post(self: _WorkerCommand, request: Request, tenant_id: int) -> Response:
        return _WorkerCommand.post(self, request, tenant_id)

    view = type(f"Worker{verb.title().replace('-', '')}", (_WorkerCommand,), {
        "command": staticmethod(service), "verb": verb,
        "post": extend_schema(tags=TAGS, summary=summary, description=description, request=None,
                              responses=responses)(post),
    })
    return view


WorkerStart = _command(
    lifecycle.worker_start_outcome, "start", "Start the worker (idempotent)",
    "Record that the tenant's worker should run, place it on a live fleet host and nudge that host's agent, "
    "which spawns it. Starting a worker that already runs (or is starting) changes nothing and answers 200 "
    "with `message` \"already running\" (or \"already starting\").",
    idempotent=True,
)
WorkerStop = _command(
    lifecycle.worker_stop_outcome, "stop", "Stop the worker gracefully (idempotent)",
    "Record that the tenant's worker should not run; its agent sends SIGTERM, the bot closes Chromium and "
    "records the session, and the worker stays stopped until started again. The WhatsApp link is kept. "
    "Stopping a stopped (or stopping) worker changes nothing and answers 200 with `message` \"already stopped\" "
    "(or \"already stopping\").",
    idempotent=True,
)
WorkerRestart = _command(
    lifecycle.worker_restart_outcome, "restart", "Replace the worker process",
    "Stop the running worker gracefully and spawn a new process in its place (a new epoch: the old process "
    "can no longer heartbeat). The WhatsApp link and the runtime state are kept. A stopped worker is a 409: "
    "start it instead.",
    idempotent=False,
)
WorkerForceRestart = _command(
    lifecycle.worker_force_restart_outcome, "force-restart", "Kill the worker at once and spawn it again",
    "Kill the worker at once (no grace period), wipe its runtime state (rate-limit windows, dedup keys, "
    "chat queues) and spawn it again; the linked WhatsApp session is kept. For a worker that does not stop "
    "by itself. A stopped worker is a 409: start it instead.",
    idempotent=False,
)


class SendMessage(APIView):
    @extend_schema(tags=TAGS, summary="Send a text through the tenant's worker", request=SendMessageIn,
                   responses={202: MessageLogOut})
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        entry = commands.send_text(tenant=tenant, **validated(SendMessageIn, request.data))
        return Response(MessageLogOut(entry).data, status=202)


SESSION_TAGS = ["admin: session"]


def link_response(outcome: linking.LinkOutcome) -> Response:
    """202 when the bot carries the command out; 200 when it is done, or there was nothing to do."""
    outcome.session.message = outcome.message  # type: ignore[attr-defined]
    return Response(SessionCommandOut(outcome.session).data, status=202 if outcome.pending else 200)


class SessionLogout(APIView):
    @extend_schema(
        tags=SESSION_TAGS, summary="Log out the tenant's linked WhatsApp device",
        description="Unlink the device, as whatsapp-web.js's `client.logout()` does: with the worker running, its "
        "bot logs out inside WhatsApp Web (202; the session goes to LOGGED_OUT, then QR_READY with a new code "
        "to link again); with no worker running, the stored link (browser profile and its backup) is deleted "
        "(200, LOGGED_OUT; the next start shows a QR). A session that is not linked, or a worker that is "
        "starting or stopping, is a 409.",
        request=None,
        responses={202: OpenApiResponse(SessionCommandOut, description="The bot is logging out."),
                   200: OpenApiResponse(SessionCommandOut, description="Logged out (no worker was running)."),
                   409: OpenApiResponse(description="Not linked, or the worker is between states.")},
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        return link_response(linking.session_logout(tenant_id=tenant.pk, reason=f"logout requested by {request.user}"))


class SessionNewQr(APIView):
    @extend_schema(
        tags=SESSION_TAGS, summary="Show a new QR code for the tenant to scan",
        description="For a session that is not linked: start the worker (or replace it), which shows a fresh QR "
        "code with a fresh budget of `QR_MAX_UNSCANNED` codes — after a QR timeout, say. 200 if a QR code is "
        "already shown; 409 if WhatsApp is linked (log out first).",
        request=None,
        responses={202: OpenApiResponse(SessionCommandOut, description="A new QR code is on its way."),
                   200: OpenApiResponse(SessionCommandOut, description="A QR code is already shown."),
                   409: OpenApiResponse(description="WhatsApp is linked.")},
    )
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        return link_response(linking.session_new_qr(tenant_id=tenant.pk, reason=f"new QR requested by {request.user}"))
