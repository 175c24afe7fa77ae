"""Control-plane API for a tenant's worker: lifecycle commands, its record, and sending (staff only)."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flowhq.api.serializers import validated
from tenants.api.serializers import MessageLogOut, SendMessageIn
from tenants.selectors import tenant_get
from workers import commands, lifecycle
from workers.api.serializers import WorkerOut
from workers.models import WorkerProcess

TAGS = ["admin: worker"]


class WorkerDetail(APIView):
    @extend_schema(tags=TAGS, summary="The tenant's worker record", responses=WorkerOut)
    def get(self, request: Request, tenant_id: int) -> Response:
        return Response(WorkerOut(tenant_get(tenant_id=tenant_id).worker).data)


class _WorkerCommand(APIView):
    command: Callable[..., WorkerProcess]
    verb: str

    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        worker = type(self).command(tenant_id=tenant.pk, reason=f"{self.verb} requested by {request.user}")
        return Response(WorkerOut(worker).data, status=202)


def _command(service: Callable[..., WorkerProcess], verb: str, summary: str) -> type[_WorkerCommand]:
    view = type(f"Worker{verb.title().replace('-', '')}", (_WorkerCommand,), {
        "command": staticmethod(service), "verb": verb,
        "post": extend_schema(tags=TAGS, summary=summary, request=None, responses={202: WorkerOut})(
            _WorkerCommand.post),
    })
    return view


WorkerStart = _command(lifecycle.worker_start, "start", "Start the worker (idempotent)")
WorkerStop = _command(lifecycle.worker_stop, "stop", "Stop the worker gracefully (idempotent)")
WorkerRestart = _command(lifecycle.worker_restart, "restart", "Replace the worker process")
WorkerForceRestart = _command(
    lifecycle.worker_force_restart, "force-restart", "Kill the worker at once, wipe its runtime state, spawn it again"
)


class SendMessage(APIView):
    @extend_schema(tags=TAGS, summary="Send a text through the tenant's worker", request=SendMessageIn,
                   responses={202: MessageLogOut})
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = tenant_get(tenant_id=tenant_id)
        entry = commands.send_text(tenant=tenant, **validated(SendMessageIn, request.data))
        return Response(MessageLogOut(entry).data, status=202)
