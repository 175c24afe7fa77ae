"""Writes the portal web app makes for a member, beyond the tenant domain's own services."""

from __future__ import annotations

from flowhq.errors import Conflict
from tenants.models import Tenant, WhatsAppSession
from tenants.states import SessionState
from workers import linking
from workers.models import WorkerProcess
from workers.states import DesiredState

# The session states in which the bot shows no QR code until its worker starts again.
NEEDS_NEW_QR = (SessionState.QR_TIMEOUT, SessionState.LOGGED_OUT)


def qr_renew(*, tenant: Tenant, requested_by: str) -> WorkerProcess:
    """A member's "new QR code" (workers.linking.session_new_qr), only where a member may ask for
    one: after too many codes went unscanned, or after the phone unlinked the bot, and with the
    worker meant to run (a stopped bot is the operator's to start)."""
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    state = session.state if session else SessionState.NEW
    if state not in NEEDS_NEW_QR:
        raise Conflict("There is no need for a new QR code now.", details={"state": state})
    worker = WorkerProcess.objects.filter(tenant=tenant).first()
    if worker is None or worker.desired_state != DesiredState.RUNNING:
        raise Conflict("Your bot is stopped: ask your operator to start it.")
    linking.session_new_qr(tenant_id=tenant.pk, reason=f"new QR code asked for by {requested_by} in the portal")
    return WorkerProcess.objects.get(pk=worker.pk)
