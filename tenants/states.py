"""Statuses of the tenant domain and their legal moves."""

from django.db import models

from flowhq.state_machine import StateMachine


class TenantStatus(models.TextChoices):
    NEW = "NEW", "New"
    STARTING = "STARTING", "Starting"
    RUNNING = "RUNNING", "Running"
    STOPPED = "STOPPED", "Stopped"
    ERROR = "ERROR", "Error"


class SessionState(models.TextChoices):
    NEW = "NEW", "New"
    QR_READY = "QR_READY", "QR ready"
    CONNECTED = "CONNECTED", "Connected"
    DISCONNECTED = "DISCONNECTED", "Disconnected"
    LOGGED_OUT = "LOGGED_OUT", "Logged out"
    # The bot stopped asking for QR codes after too many went unscanned.
    QR_TIMEOUT = "QR_TIMEOUT", "QR timed out"


class SetupRequestState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"


T, S, R = TenantStatus, SessionState, SetupRequestState

# RUNNING means the bot is linked and answering; STARTING covers the worker
# coming up, waiting for a scan and reconnecting.
TENANT_MACHINE = StateMachine(
    "tenant",
    {
        T.NEW: {T.STARTING, T.STOPPED},
        T.STARTING: {T.RUNNING, T.STOPPED, T.ERROR},
        T.RUNNING: {T.STARTING, T.STOPPED, T.ERROR},
        T.STOPPED: {T.STARTING},
        T.ERROR: {T.STARTING, T.STOPPED},
    },
)

SESSION_MACHINE = StateMachine(
    "session",
    {
        S.NEW: {S.QR_READY, S.CONNECTED, S.DISCONNECTED, S.LOGGED_OUT},
        S.QR_READY: {S.CONNECTED, S.QR_TIMEOUT, S.DISCONNECTED, S.LOGGED_OUT, S.NEW},
        S.CONNECTED: {S.DISCONNECTED, S.LOGGED_OUT, S.QR_READY},
        S.DISCONNECTED: {S.CONNECTED, S.QR_READY, S.LOGGED_OUT},
        S.LOGGED_OUT: {S.QR_READY, S.CONNECTED, S.NEW},
        S.QR_TIMEOUT: {S.QR_READY, S.CONNECTED, S.NEW},
    },
)

SETUP_REQUEST_MACHINE = StateMachine(
    "setup request",
    {R.PENDING: {R.APPROVED, R.REJECTED}, R.APPROVED: set(), R.REJECTED: set()},
)
