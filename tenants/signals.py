"""What the domain announces, sent inside the transaction that writes the change.

Receivers (the webhooks app) run in that transaction, so whatever they write commits or rolls back
with the change itself; they must be quick and must never raise. Tenants imports nothing of theirs.
"""

from __future__ import annotations

from django.dispatch import Signal

# A message log row was created: `log` (a MessageLog).
message_logged = Signal()
# A message log row changed status: `log`, `previous` (the status it had).
message_status_changed = Signal()
# The WhatsApp session was moved: `session`, `previous` (its state before), `changed` (field names written).
session_changed = Signal()
# Human takeover: `pause` (a ChatPause) started or renewed; `tenant_id`, `chat` of a pause ended.
chat_paused = Signal()
chat_resumed = Signal()
