"""A warning for a failure that repeats on every pass of a loop or scrape: logged once a minute per key."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

EVERY_S = 60.0


class ThrottledWarning:
    def __init__(self, logger: logging.Logger, message: str, every_s: float = EVERY_S) -> None:
        self.logger, self.message, self.every_s = logger, message, every_s
        self._logged_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, exc: BaseException, **extra: Any) -> bool:
        """Log `exc` under `key` unless that key was logged less than `every_s` ago; True if logged."""
        now = time.monotonic()
        with self._lock:
            if now - self._logged_at.get(key, float("-inf")) < self.every_s:
                return False
            self._logged_at[key] = now
        self.logger.warning(self.message, extra={"source": key, "error": str(exc)[:200], **extra})
        return True
