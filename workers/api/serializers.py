from __future__ import annotations

from rest_framework import serializers

from tenants.api.serializers import SessionOut
from workers.models import WorkerProcess


class WorkerOut(serializers.ModelSerializer[WorkerProcess]):
    """DESIGN.md's worker shape, plus the tenant's queue and the fencing epoch."""

    queue = serializers.CharField(read_only=True)

    class Meta:
        model = WorkerProcess
        fields = [
            "status", "desired_state", "host", "node", "pid", "started_at", "heartbeat_at",
            "stale_after", "restart_count", "consecutive_failures", "last_error", "epoch", "queue",
            "updated_at",
        ]


class WorkerCommandOut(WorkerOut):
    """The worker record after a lifecycle command, with what the command did."""

    message = serializers.CharField(
        read_only=True, help_text='What happened: "start requested", or "already running" when nothing had to.'
    )

    class Meta(WorkerOut.Meta):
        fields = [*WorkerOut.Meta.fields, "message"]


class SessionCommandOut(SessionOut):
    """The WhatsApp session after a linking command (log out, new QR), with what the command did."""

    message = serializers.CharField(
        read_only=True, help_text='What happened: "logout requested" (the bot carries it out), "logged out", '
        '"new QR requested", "a QR code is already shown".'
    )

    class Meta(SessionOut.Meta):
        fields = [*SessionOut.Meta.fields, "message"]
