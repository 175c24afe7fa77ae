"""Orchestration records: the fleet's hosts and one worker process per tenant."""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant
from workers.states import DesiredState, WorkerStatus


class FleetHost(models.Model):
    """A host whose fleet agent is (or was) registered, with its capacity."""

    name = models.CharField(max_length=100, unique=True)
    capacity = models.PositiveIntegerField()
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The agent is considered dead once this passes.
    stale_after = models.DateTimeField(null=True, blank=True)
    draining = models.BooleanField(default=False, help_text="Place no new tenants here")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkerProcess(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="worker")
    desired_state = models.CharField(
        max_length=16, choices=DesiredState.choices, default=DesiredState.STOPPED
    )
    status = models.CharField(max_length=16, choices=WorkerStatus.choices, default=WorkerStatus.STOPPED)
    host = models.CharField(max_length=100, blank=True)
    node = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The sweep claims a live worker once this passes; every heartbeat moves it.
    stale_after = models.DateTimeField(null=True, blank=True)
    # Fencing: only the process spawned for the current epoch may run the bot,
    # and only while its lease has not expired (see docs/architecture.md).
    epoch = models.PositiveBigIntegerField(default=0)
    lease_epoch = models.PositiveBigIntegerField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    restart_count = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set by force-restart: the agent kills the current process at once and
    # wipes the runtime state before it spawns the next one.
    force_requested = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "worker process"
        verbose_name_plural = "worker processes"
        # No index on stale_after, heartbeat_at or lease_expires_at: the heartbeat moves all three,
        # and an UPDATE that changes no indexed column can be HOT (the new row version on the same
        # page, no index entry written). Migration 0003 also gives the table fillfactor 70 so that
        # it fits. The sweep's stale query is a sequential scan of this one small row per tenant
        # instead (docs/architecture.md, "Why the heartbeat writes the database").
        indexes = [
            models.Index(fields=["host", "desired_state"], name="worker_host_desired"),
        ]

    def __str__(self) -> str:
        return f"worker of {self.tenant_id} [{self.status}]"

    @property
    def queue(self) -> str:
        return f"tenant.{self.tenant_id}"


class WorkerTransition(models.Model):
    """One status change of a worker, with why it happened."""

    worker = models.ForeignKey(WorkerProcess, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=WorkerStatus.choices)
    to_status = models.CharField(max_length=16, choices=WorkerStatus.choices)
    reason = models.CharField(max_length=500)
    host = models.CharField(max_length=100, blank=True)
    epoch = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["worker", "-created_at"], name="transition_worker_newest")]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}: {self.reason}"


class ProfileBackup(models.Model):
    """A tenant's browser profile (where WhatsApp Web keeps the link), packed.

    Saved by the worker holding the tenant's lease; unpacked before Chromium
    starts on a host whose profile did not come from it, so a tenant placed on
    another host comes back linked without a new scan.
    """

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="profile_backup")
    data = models.BinaryField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of data; also the backup's version")
    size = models.PositiveIntegerField()
    epoch = models.PositiveBigIntegerField(help_text="The worker epoch that saved it")
    host = models.CharField(max_length=100, blank=True)
    saved_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile backup of {self.tenant_id} ({self.size} bytes)"
