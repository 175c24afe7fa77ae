"""How the admin shows a WhatsApp session: its badge, and whether its QR code is an image."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from flowhq.admin_display import badge
from tenants.models import WhatsAppSession

QR_PREFIX = "data:image/png;base64,"


def session_badge(session: WhatsAppSession | None) -> SafeString:
    if session is None:
        return format_html("-")
    return badge(session.state, session.get_state_display(), session.last_error)
