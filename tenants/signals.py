"""What the domain announces, sent inside the transaction that writes the change.

Receivers (the workers and webhooks apps) run in that transaction, so whatever they write commits or
rolls back with the change itself; they must be quick. Tenants imports nothing of theirs: it says what
happened, and orchestration (workers/receivers.py) decides what that means for a running bot.
"""

from __future__ import annotations

from django.dispatch import Signal

# A tenant was created: `tenant`. Its worker record is created by a receiver, in the same transaction.
tenant_created = Signal()
# A tenant is about to be deleted: `tenant`. A receiver refuses by raising a FlowHQError (a Conflict).
tenant_deleting = Signal()
# What the running bot reads changed (a reply template, or a bot setting of the tenant): `tenant_id`.
templates_changed = Signal()
# A message log row was created: `log` (a MessageLog).
message_logged = Signal()
# A message log row changed status: `log`, `previous` (the status it had).
message_status_changed = Signal()
# The WhatsApp session was moved: `session`, `previous` (its state before), `changed` (field names written).
session_changed = Signal()
# Human takeover: `pause` (a ChatPause) started or renewed; `tenant_id`, `chat` of a pause ended.
chat_paused = Signal()
chat_resumed = Signal()
