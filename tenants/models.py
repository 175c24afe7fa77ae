"""The tenant domain: who the customers are and what their bots know and did."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from tenants.states import SessionState, SetupRequestState, TenantStatus


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.NEW)
    status_reason = models.CharField(max_length=500, blank=True)
    # Bot settings; null means "use the platform default from the environment".
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # Message policy (status posts, newsletters and reactions are never answered; see tenants/policy.py).
    reply_in_groups = models.BooleanField(
        default=False, help_text="Answer messages in groups too (by default groups are logged, not answered)."
    )
    reply_to_media = models.BooleanField(
        default=True, help_text="Answer images, videos and documents by matching their caption."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class SetupRequest(models.Model):
    """A portal user's request to have a bot set up for their business."""

    email = models.EmailField()
    business_name = models.CharField(max_length=200)
    phone = models.CharField(max_length=32)
    state = models.CharField(
        max_length=16, choices=SetupRequestState.choices, default=SetupRequestState.PENDING
    )
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="setup_requests"
    )
    note = models.CharField(max_length=500, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open request per user at a time.
            models.UniqueConstraint(
                Lower("email"),
                condition=models.Q(state="PENDING"),
                name="setup_request_one_pending_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.business_name} <{self.email}> [{self.state}]"


class PortalMembership(models.Model):
    """Links a portal user (by email) to the one tenant they may see."""

    email = models.EmailField()
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="members")
    # Granted by an operator: the member may change the tenant's reply templates in the portal.
    can_edit_templates = models.BooleanField(
        default=False, help_text="May add, change and delete the tenant's reply templates in the portal."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="portal_membership_unique_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant_id}"


class MatchKind(models.TextChoices):
    EXACT = "exact", "Exact text"
    KEYWORD = "keyword", "Contains keyword"
    REGEX = "regex", "Regular expression"
    DEFAULT = "default", "Default (fallback)"


class ReplyTemplate(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="templates")
    match = models.CharField(max_length=16, choices=MatchKind.choices, default=MatchKind.KEYWORD)
    pattern = models.CharField(max_length=500, blank=True)
    body = models.TextField()
    # Higher wins among templates of the same match kind.
    priority = models.IntegerField(default=0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "-priority", "id"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="template_tenant_enabled")]

    def __str__(self) -> str:
        return f"{self.match}:{self.pattern!r} → {self.body[:40]!r}"


class WhatsAppSession(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="session")
    state = models.CharField(max_length=16, choices=SessionState.choices, default=SessionState.NEW)
    qr = models.TextField(blank=True, help_text="PNG data URI of the current QR code")
    qr_issued_at = models.DateTimeField(null=True, blank=True)
    qr_count = models.PositiveIntegerField(default=0, help_text="QR codes shown since the last start")
    phone = models.CharField(max_length=32, blank=True)
    # WhatsApp Web's own socket state, as last reported from inside the page, and its version.
    wa_state = models.CharField(max_length=32, blank=True)
    wa_version = models.CharField("WhatsApp Web version", max_length=64, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "WhatsApp session"

    def __str__(self) -> str:
        return f"session of {self.tenant_id} [{self.state}]"


class Direction(models.TextChoices):
    IN = "in", "Incoming"
    OUT = "out", "Outgoing"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    REPLIED = "replied", "Replied"
    SENT = "sent", "Sent"
    NO_MATCH = "no_match", "No template matched"
    RATE_LIMITED = "rate_limited", "Waiting for the rate limit"
    DROPPED = "dropped", "Dropped"
    FAILED = "failed", "Failed"
    # Logged, never to be answered: the tenant's policy (a group, media) or a human took the chat over.
    IGNORED = "ignored", "Ignored"
    # The customer deleted the message before it was answered.
    REVOKED = "revoked", "Revoked by the sender"


class MessageSource(models.TextChoices):
    """Who wrote a logged message."""

    CUSTOMER = "customer", "Customer"
    BOT = "bot", "Auto-reply"
    API = "api", "Sent through the API"
    PHONE = "phone", "Sent from the phone"


class MessageLog(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=128)
    chat = models.CharField(max_length=128)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    source = models.CharField(max_length=8, choices=MessageSource.choices, default=MessageSource.CUSTOMER)
    # WhatsApp's message type: chat, image, video, document, ciphertext, …
    kind = models.CharField(max_length=32, default="chat")
    # In a group: who wrote it (the chat is the group).
    author = models.CharField(max_length=128, blank=True)
    # The text; for media, the caption.
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    # For an outgoing reply: the incoming message it answers.
    in_reply_to = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=500, blank=True)
    wa_timestamp = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "message_id", "direction"], name="message_log_unique_per_direction"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="message_log_newest"),
            models.Index(fields=["tenant", "chat", "-created_at"], name="message_log_chat"),
            # Only the rows still to be answered or sent: the bot resumes them by tenant, and
            # /metrics counts them fleet-wide, without reading the whole log.
            models.Index(
                fields=["tenant", "created_at"], name="message_log_pending",
                condition=models.Q(status__in=["received", "queued", "rate_limited"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.message_id} [{self.status}]"


class ChatPause(models.Model):
    """Human takeover: the owner answered this chat from the phone, so the bot keeps quiet in it
    until `paused_until` (renewed by each further message of the owner)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="chat_pauses")
    chat = models.CharField(max_length=128)
    paused_until = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-paused_until"]
        constraints = [models.UniqueConstraint(fields=["tenant", "chat"], name="chat_pause_one_per_chat")]
        indexes = [models.Index(fields=["tenant", "-paused_until"], name="chat_pause_tenant_until")]

    def __str__(self) -> str:
        return f"{self.chat} paused until {self.paused_until:%Y-%m-%d %H:%M}"
