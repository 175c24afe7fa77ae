"""How the admin shows a worker: its status badge and its heartbeat's age."""

from __future__ import annotations

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from flowhq.admin_display import age, badge
from workers.models import WorkerProcess
from workers.states import LIVE_STATUSES


def heartbeat_age(worker: WorkerProcess | None) -> SafeString:
    """The heartbeat's age, in red once a live worker has missed its deadline."""
    if worker is None:
        return format_html("-")
    now = timezone.now()
    stale = worker.status in LIVE_STATUSES and worker.stale_after is not None and worker.stale_after < now
    if stale:
        return format_html(
            '<span class="fhq-stale" title="stale since {}">{}</span>', age(worker.stale_after, now),
            age(worker.heartbeat_at, now),
        )
    return format_html("{}", age(worker.heartbeat_at, now))


def worker_badge(worker: WorkerProcess | None) -> SafeString:
    """Status and pid, the desired state when it differs, the last error as tooltip."""
    if worker is None:
        return format_html("-")
    label = f"{worker.status} · pid {worker.pid}" if worker.pid else worker.status
    pill = badge(worker.status, label, worker.last_error)
    if worker.desired_state != worker.status:
        return format_html('{} <small class="fhq-quiet">→ {}</small>', pill, worker.desired_state)
    return pill
