"""Display pieces shared by the admin pages of every app: coloured status badges,
ages ("3s ago"), read-only and styled admin bases. The badges of one app's rows live
with that app (tenants/admin/display.py, workers/admin_display.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

_M = TypeVar("_M", bound=Model)

TONES = {
    "NEW": "grey", "STOPPED": "grey", "STARTING": "amber", "STOPPING": "amber", "RUNNING": "green",
    "ERROR": "red", "QR_READY": "blue", "CONNECTED": "green", "DISCONNECTED": "amber",
    "LOGGED_OUT": "red", "QR_TIMEOUT": "red", "LIVE": "green", "STALE": "red",
}


def badge(value: str, label: str = "", title: str = "") -> SafeString:
    """A coloured status pill; `title` becomes its tooltip."""
    return format_html(
        '<span class="fhq-badge fhq-{}" title="{}">{}</span>', TONES.get(value, "grey"), title, label or value
    )


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """'3s ago', '5 min ago', '2 h ago', '4 d ago', or '-' for never."""
    if moment is None:
        return "-"
    seconds = max(0.0, ((now or timezone.now()) - moment).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def latest_formset(limit: int) -> type[BaseInlineFormSet[Any, Any, Any]]:
    """An inline formset showing only the newest `limit` rows (by the model's ordering)."""

    class Latest(BaseInlineFormSet[Any, Any, Any]):
        def get_queryset(self) -> QuerySet[Any]:
            if not hasattr(self, "_latest"):
                self._latest = super().get_queryset()[:limit]
            return self._latest

    return Latest


def adopt(target: Model, saved: Model) -> None:
    """Make the admin's unsaved `target` the row a service created, so the admin logs and redirects to it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class StyledAdmin(admin.ModelAdmin[_M]):
    """Loads the badges' stylesheet on the changelist and change pages."""

    class Media:
        css = {"all": ["tenants/admin.css"]}


class ReadOnly:
    """For admins and inlines of records written by the system: operators look, never edit."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, StyledAdmin[_M]):
    pass
