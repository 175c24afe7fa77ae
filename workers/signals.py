"""What orchestration announces, sent inside the transaction that writes the change (see tenants.signals)."""

from __future__ import annotations

from django.dispatch import Signal

# A worker changed status: `worker` (a WorkerProcess), `previous` (its status before), `reason`.
worker_status_changed = Signal()
