"""The worker process's status and desired state, and its legal moves."""

from django.db import models

from flowhq.state_machine import StateMachine


class WorkerStatus(models.TextChoices):
    STOPPED = "STOPPED", "Stopped"
    STARTING = "STARTING", "Starting"
    RUNNING = "RUNNING", "Running"
    STOPPING = "STOPPING", "Stopping"
    ERROR = "ERROR", "Error"


class DesiredState(models.TextChoices):
    RUNNING = "RUNNING", "Running"
    STOPPED = "STOPPED", "Stopped"


W = WorkerStatus

# DESIGN.md: STOPPED → STARTING → RUNNING → STOPPING → STOPPED; any → ERROR;
# ERROR → STARTING on recovery. A stop during start goes STARTING → STOPPING,
# and an ERROR worker whose process is already gone may be stopped outright.
WORKER_MACHINE = StateMachine(
    "worker",
    {
        W.STOPPED: {W.STARTING},
        W.STARTING: {W.RUNNING, W.STOPPING},
        W.RUNNING: {W.STOPPING},
        W.STOPPING: {W.STOPPED},
        W.ERROR: {W.STARTING, W.STOPPING, W.STOPPED},
    },
    any_to={W.ERROR},
)

LIVE_STATUSES = (W.STARTING, W.RUNNING)
