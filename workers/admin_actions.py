"""Worker lifecycle from the Django admin: changelist actions and the tenant page's buttons.

Both call the same services as the API (workers/lifecycle.py), one tenant at a
time, and report each outcome (or refusal) as an admin message rather than
failing the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from flowhq.errors import FlowHQError
from tenants.models import Tenant
from workers import lifecycle, linking
from workers.states import DesiredState

# A lifecycle service returns an Outcome (workers/lifecycle.py), a linking one a LinkOutcome.
Service = Callable[..., lifecycle.Outcome | linking.LinkOutcome]
NAMES_IN_A_MESSAGE = 10


@dataclass(frozen=True)
class LifecycleOp:
    verb: str  # in URLs and reasons: "start", "force-restart"
    label: str  # the button
    description: str  # the changelist action
    service: Service
    confirm: str = ""  # asked in the browser before the button posts

    @property
    def action_name(self) -> str:
        return f"worker_{self.verb.replace('-', '_')}"


OPERATIONS: dict[str, LifecycleOp] = {
    op.verb: op
    for op in (
        LifecycleOp("start", "Start", "Start the worker", lifecycle.worker_start_outcome),
        LifecycleOp("stop", "Stop", "Stop the worker", lifecycle.worker_stop_outcome),
        LifecycleOp("restart", "Restart", "Restart the worker", lifecycle.worker_restart_outcome),
        LifecycleOp(
            "force-restart", "Force-restart", "Force-restart the worker (kill, wipe runtime state)",
            lifecycle.worker_force_restart_outcome,
            confirm="Kill the worker at once and wipe its runtime state? The WhatsApp link is kept.",
        ),
        LifecycleOp("new-qr", "Show a new QR", "Show a new QR code to scan (starts the worker if needed)",
                    linking.session_new_qr),
        LifecycleOp(
            "logout", "Log out WhatsApp", "Log out the linked WhatsApp device", linking.session_logout,
            confirm="Unlink this tenant's WhatsApp device? The bot stops answering until a new QR is scanned.",
        ),
    )
}


def _listing(labels: list[str]) -> str:
    shown = ", ".join(labels[:NAMES_IN_A_MESSAGE])
    more = len(labels) - NAMES_IN_A_MESSAGE
    return f"{shown} and {more} more" if more > 0 else shown


def run_lifecycle(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, tenant_ids: Iterable[int], verb: str) -> None:
    """Apply the lifecycle operation `verb` to each tenant and say what happened."""
    op = OPERATIONS[verb]
    ids = sorted(set(tenant_ids))
    names = dict(Tenant.objects.filter(pk__in=ids).values_list("pk", "name"))
    done: list[str] = []
    waiting: list[str] = []
    unchanged: dict[str, list[str]] = {}
    for tenant_id in ids:
        label = f"{names.get(tenant_id, 'tenant')} (#{tenant_id})"
        try:
            outcome = op.service(tenant_id=tenant_id, reason=f"{verb} requested by {request.user} in the admin")
        except FlowHQError as exc:
            refused = f"{op.label}: refused for {label}" if verb in ("new-qr", "logout") else f"Could not {verb} {label}"
            modeladmin.message_user(request, f"{refused}: {exc.message}", messages.ERROR)
            continue
        if isinstance(outcome, linking.LinkOutcome):
            if outcome.pending:
                done.append(label)
            else:
                unchanged.setdefault(outcome.message, []).append(label)
            continue
        if not outcome.changed:
            unchanged.setdefault(outcome.message, []).append(label)
            continue
        done.append(label)
        if outcome.worker.desired_state == DesiredState.RUNNING and not outcome.worker.host:
            waiting.append(label)
    what = {"new-qr": "A new QR code", "logout": "Logout"}.get(verb, verb.capitalize())
    if done:
        modeladmin.message_user(
            request, f"{what} requested for {_listing(done)}; "
            f"{'the bot' if verb == 'logout' else 'the fleet agent'} carries it out.",
            messages.SUCCESS,
        )
    for message, labels in unchanged.items():
        # "Acme (#1): already running." — a no-op says so instead of claiming a change.
        modeladmin.message_user(request, f"{_listing(labels)}: {message}.", messages.INFO)
    if waiting:
        modeladmin.message_user(
            request, f"No live fleet host for {_listing(waiting)}: the worker starts as soon as an agent is up.",
            messages.WARNING,
        )


def lifecycle_actions(tenant_id_of: Callable[[QuerySet[Any]], Iterable[int]]) -> list[Callable[..., None]]:
    """Admin actions start/stop/restart/force-restart for a changelist of tenants or workers."""

    def make(op: LifecycleOp) -> Callable[..., None]:
        @admin.action(description=op.description, permissions=["change"])
        def action(modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]) -> None:
            run_lifecycle(modeladmin, request, tenant_id_of(queryset), op.verb)

        action.__name__ = op.action_name
        return action

    return [make(op) for op in OPERATIONS.values()]
