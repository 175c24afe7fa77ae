"""Linking a tenant's WhatsApp: show a new QR code, and log the linked device out.

Both need the worker (a QR is only shown by a running bot; a linked device is logged out from
inside its page), which is why they live here and not in tenants/. Views, the admin and the
portal call these; the bot does the page side (workers/bot/runtime.py `logout`).

Logging out is what whatsapp-web.js's `client.logout()` does: `WAWebSocketModel.Socket.logout()`
in the page — the device unlinks itself from the phone, and the page clears its storage and
comes back with a fresh QR code. With no worker running there is no page to do it from: the
stored link (the browser profile and its backup) is deleted instead, so the next start shows a
QR; the phone drops such a device itself once it stays away (as WhatsApp does).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from django.db import transaction

from flowhq.errors import Conflict, NotFound
from tenants.models import WhatsAppSession
from tenants.services import session_transition
from tenants.states import SessionState
from workers import lifecycle
from workers.models import WorkerProcess
from workers.nudge import nudge_on_commit, tenant_queue
from workers.profile_backups import profile_backup_delete
from workers.sessions import session_dir
from workers.states import DesiredState, WorkerStatus

log = logging.getLogger(__name__)
S, W = SessionState, WorkerStatus
LINKED = (S.CONNECTED, S.DISCONNECTED)


@dataclass(frozen=True)
class LinkOutcome:
    """`pending`: the bot carries it out (the API answers 202); otherwise it is done, or there was
    nothing to do (200). `message` says which."""

    session: WhatsAppSession
    pending: bool
    message: str


def _session(tenant_id: int) -> WhatsAppSession:
    try:
        return WhatsAppSession.objects.select_for_update().get(tenant_id=tenant_id)
    except WhatsAppSession.DoesNotExist:
        raise NotFound(f"No tenant with id {tenant_id}.") from None


def _bot_runs(worker: WorkerProcess) -> bool:
    return worker.desired_state == DesiredState.RUNNING and worker.status == W.RUNNING


def session_new_qr(*, tenant_id: int, reason: str = "new QR requested") -> LinkOutcome:
    """Make the tenant's bot show a fresh QR code (with a fresh budget of QR_MAX_UNSCANNED):
    a stopped worker is started, a running one replaced. A linked session is a 409 (log it out
    first); a QR that is still shown is left as it is."""
    with transaction.atomic():
        session = _session(tenant_id)
        worker = WorkerProcess.objects.get(tenant_id=tenant_id)
        if session.state in LINKED:
            raise Conflict(
                f"WhatsApp is linked (to {session.phone or 'a phone'}): log it out before showing a new QR.",
                details={"state": session.state},
            )
        if session.state == S.QR_READY and _bot_runs(worker):
            return LinkOutcome(session, False, "a QR code is already shown")
    if worker.desired_state == DesiredState.STOPPED:
        lifecycle.worker_start(tenant_id=tenant_id, reason=reason)
    else:
        lifecycle.worker_restart(tenant_id=tenant_id, reason=reason)
    return LinkOutcome(WhatsAppSession.objects.get(tenant_id=tenant_id), True, "new QR requested")


def session_logout(*, tenant_id: int, reason: str = "logout requested") -> LinkOutcome:
    """Unlink the tenant's WhatsApp device. With its bot running, the bot logs out in the page
    (202: the session goes to LOGGED_OUT, then QR_READY with a new code); with no worker, the
    stored link is deleted now (200: LOGGED_OUT, the next start shows a QR). A session that is
    not linked, or a worker between states, is a 409."""
    with transaction.atomic():
        session = _session(tenant_id)
        worker = WorkerProcess.objects.select_for_update().get(tenant_id=tenant_id)
        if session.state not in LINKED:
            raise Conflict(f"WhatsApp is not linked (the session is {session.state}): there is nothing to log out.",
                           details={"state": session.state})
        if _bot_runs(worker):
            nudge_on_commit("bot.logout", tenant_id, tenant_queue(tenant_id),
                            failure="could not reach the tenant's worker")
            log.info("logout sent to the bot", extra={"tenant": tenant_id, "reason": reason})
            return LinkOutcome(session, True, "logout requested")
        if worker.status != W.STOPPED and worker.status != W.ERROR:
            raise Conflict(f"The worker is {worker.status.lower()}: log out once it is running or stopped.",
                           details={"status": worker.status})
        logged_out = session_transition(tenant_id=tenant_id, to=S.LOGGED_OUT, phone="", qr="", wa_state="",
                                        last_error=f"logged out: {reason}")
        profile_backup_delete(tenant_id=tenant_id)
    shutil.rmtree(session_dir(tenant_id), ignore_errors=True)  # the browser profile holds the link too
    log.info("logged out with no worker running: stored link deleted", extra={"tenant": tenant_id})
    assert logged_out is not None  # strict: an illegal move raises instead
    return LinkOutcome(logged_out, False, "logged out")
