"""The in-process window of recently seen message ids.

WhatsApp Web fires the same message event more than once. This window drops
such repeats without a database round trip; it is only a fast path — the
durable guarantee is the message log's uniqueness (tenants/messages.py), which
also covers restarts and other workers.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, message_id: str) -> bool:
        """True if `message_id` is in the window; otherwise remember it and return False."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return True
        self._ids[message_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)
