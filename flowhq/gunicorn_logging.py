"""gunicorn's log lines in FlowHQ's structured format (`gunicorn.conf.py` selects this).

The error log keeps gunicorn's messages; the access log is one line per request
with its fields as keys, so `web` reads like every other process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn import glogging

from flowhq.logging import StructuredFormatter


class StructuredLogger(glogging.Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = StructuredFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = str(resp.status).split(None, 1)[0]
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        self.access_log.info(
            "%s %s %s", method, path, status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "bytes": getattr(resp, "sent", None),
                "ms": round(request_time.total_seconds() * 1000, 1),
                "remote": environ.get("REMOTE_ADDR", "-"),
            },
        )
