from __future__ import annotations

from rest_framework import serializers

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
