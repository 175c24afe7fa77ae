"""What the fleet console shows, read in a few bounded queries.

Hosts and workers are tables with one row per host or tenant; the message rate reads at most
CONSOLE_RATE_MAX_ROWS of the newest log rows (by primary key), so the page costs the same with
a billion messages as with a thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from tenants.models import MessageLog, Tenant
from tenants.states import SessionState, TenantStatus
from webhooks import selectors as webhook_selectors
from workers.models import FleetHost, WorkerProcess
from workers.states import LIVE_STATUSES, DesiredState, WorkerStatus


@dataclass(frozen=True)
class HostRow:
    name: str
    capacity: int
    placed: int  # workers meant to run here
    running: int
    live: bool
    draining: bool
    heartbeat_at: datetime | None

    @property
    def load_percent(self) -> int:
        return round(100 * self.placed / self.capacity) if self.capacity else 0


def host_list(*, now: datetime | None = None) -> list[HostRow]:
    now = now or timezone.now()
    placed = dict(
        WorkerProcess.objects.filter(desired_state=DesiredState.RUNNING).exclude(host="")
        .values("host").annotate(n=Count("id")).order_by().values_list("host", "n")
    )
    running = dict(
        WorkerProcess.objects.filter(status=WorkerStatus.RUNNING).values("host").annotate(n=Count("id"))
        .order_by().values_list("host", "n")
    )
    return [
        HostRow(name=host.name, capacity=host.capacity, placed=placed.get(host.name, 0),
                running=running.get(host.name, 0), live=bool(host.stale_after and host.stale_after > now),
                draining=host.draining, heartbeat_at=host.heartbeat_at)
        for host in FleetHost.objects.order_by("name")
    ]


def workers_by_status() -> dict[str, int]:
    """Every worker status with its count, zeros included, in the state machine's order."""
    counts = dict(WorkerProcess.objects.values("status").annotate(n=Count("id")).order_by()
                  .values_list("status", "n"))
    return {status.value: counts.get(status.value, 0) for status in WorkerStatus}


# Problems, the most urgent first; each with the one lifecycle operation that helps (a verb of
# workers.admin_actions.OPERATIONS), or none.
CRASH_LOOPING = "crash-looping"
ERROR = "error"
STALE = "stale"
NO_HOST = "no-host"
LOGGED_OUT = "logged-out"
QR_TIMED_OUT = "qr-timed-out"
SEVERITY = [CRASH_LOOPING, ERROR, STALE, NO_HOST, LOGGED_OUT, QR_TIMED_OUT]
TITLES = {
    CRASH_LOOPING: "Crash-looping",
    ERROR: "Error",
    STALE: "Stale: missed its heartbeat",
    NO_HOST: "Waiting for a fleet host",
    LOGGED_OUT: "Logged out by the phone",
    QR_TIMED_OUT: "QR timed out",
}

ACTION_LABELS = {"start": "Start", "restart": "Restart", "force-restart": "Force-restart", "new-qr": "Show a new QR"}


@dataclass(frozen=True)
class Attention:
    tenant_id: int
    tenant_name: str
    problem: str
    detail: str
    since: datetime | None
    action: str | None  # a lifecycle verb
    hint: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.problem]

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action or "", "")


def _problem(tenant: Tenant, worker: WorkerProcess | None, now: datetime) -> Attention | None:
    session = getattr(tenant, "session", None)
    state = session.state if session else SessionState.NEW
    running = worker is not None and worker.desired_state == DesiredState.RUNNING

    def found(problem: str, detail: str, action: str | None, since: datetime | None, hint: str = "") -> Attention:
        return Attention(tenant.pk, tenant.name, problem, detail[:300], since, action, hint)

    if worker is not None and running and worker.consecutive_failures >= settings.CONSOLE_CRASH_LOOP_FAILURES:
        detail = f"{worker.consecutive_failures} crashes in a row"
        if worker.last_error:
            detail += f": {worker.last_error}"
        return found(CRASH_LOOPING, detail, "force-restart", worker.updated_at,
                     "kills it at once and wipes its runtime state; the WhatsApp link is kept")
    if (worker is not None and worker.status == WorkerStatus.ERROR) or tenant.status == TenantStatus.ERROR:
        detail = (worker.last_error if worker is not None else "") or tenant.status_reason or "no reason recorded"
        return found(ERROR, detail, "restart" if running else "start", worker.updated_at if worker else None)
    if worker is not None and worker.status in LIVE_STATUSES and worker.stale_after and worker.stale_after < now:
        return found(STALE, f"no heartbeat since {worker.heartbeat_at:%H:%M:%S}" if worker.heartbeat_at
                     else "never sent a heartbeat", "force-restart", worker.stale_after)
    if worker is not None and running and not worker.host:
        return found(NO_HOST, worker.last_error or "no live fleet agent has room", None, worker.updated_at,
                     "start a fleet agent (manage.py fleet) or raise FLEET_CAPACITY")
    if state == SessionState.LOGGED_OUT and session is not None:
        return found(LOGGED_OUT, session.last_error or "the phone unlinked this device",
                     "new-qr", session.updated_at, "the bot shows a new QR to scan")
    if state == SessionState.QR_TIMEOUT and session is not None:
        return found(QR_TIMED_OUT, session.last_error or "no QR code was scanned",
                     "new-qr", session.updated_at, "the bot shows new QR codes")
    return None


def tenants_needing_attention(*, now: datetime | None = None, limit: int = 200) -> list[Attention]:
    """Tenants in trouble, the most urgent problem first (crash loops at the top), then the oldest."""
    now = now or timezone.now()
    candidates = (
        Tenant.objects.select_related("session", "worker")
        .filter(
            Q(status=TenantStatus.ERROR)
            | Q(worker__status=WorkerStatus.ERROR)
            | Q(worker__desired_state=DesiredState.RUNNING,
                worker__consecutive_failures__gte=settings.CONSOLE_CRASH_LOOP_FAILURES)
            | Q(worker__status__in=LIVE_STATUSES, worker__stale_after__lt=now)
            | Q(worker__desired_state=DesiredState.RUNNING, worker__host="")
            | Q(session__state__in=[SessionState.LOGGED_OUT, SessionState.QR_TIMEOUT])
        )
        .order_by("id")[: limit * 2]
    )
    found = [a for tenant in candidates if (a := _problem(tenant, getattr(tenant, "worker", None), now))]
    epoch = datetime.min.replace(tzinfo=timezone.get_current_timezone())
    found.sort(key=lambda a: (SEVERITY.index(a.problem), a.since or epoch, a.tenant_id))
    return found[:limit]


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    incoming: int
    outgoing: int


@dataclass(frozen=True)
class MessageRate:
    minutes: list[MinuteCount]  # oldest first, the current (partial) minute last
    at_least: bool  # more rows than were read: the counts are lower bounds

    @property
    def last_minute(self) -> int:
        """Messages in the last full minute."""
        return self.minutes[-2].incoming + self.minutes[-2].outgoing if len(self.minutes) > 1 else 0

    @property
    def peak(self) -> int:
        return max((m.incoming + m.outgoing for m in self.minutes), default=0)


def message_rate(*, minutes: int = 10, now: datetime | None = None) -> MessageRate:
    """Messages logged per minute over the last `minutes`, fleet-wide (in and out)."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    since = now - timedelta(minutes=minutes - 1)
    cap = settings.CONSOLE_RATE_MAX_ROWS
    newest = MessageLog.objects.order_by("-id").values("id")[:cap]
    rows = (
        MessageLog.objects.filter(id__in=newest, created_at__gte=since)
        .annotate(minute=TruncMinute("created_at")).values("minute", "direction").annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[datetime, str], int] = {(row["minute"], row["direction"]): row["n"] for row in rows}
    oldest_read = MessageLog.objects.order_by("-id").values_list("created_at", flat=True)[cap - 1:cap].first()
    series = []
    for i in range(minutes):
        minute = since + timedelta(minutes=i)
        series.append(MinuteCount(minute, counts.get((minute, "in"), 0), counts.get((minute, "out"), 0)))
    return MessageRate(minutes=series, at_least=oldest_read is not None and oldest_read >= since)


def webhook_backlog() -> int:
    return webhook_selectors.backlog_count()
