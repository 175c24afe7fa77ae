"""Structured log lines: `ts level logger key=value ... msg="..."`.

Every line of a tenant worker carries `tenant=<id>` (from `TENANT_ID`), and of
any fleet process `host=<name>`; extra fields passed with `extra={...}` follow.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_.:/@" for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class ContextFilter(logging.Filter):
    """Adds the process's tenant and host to every record."""

    def __init__(self) -> None:
        super().__init__()
        self.tenant = os.environ.get("TENANT_ID", "")
        self.host = os.environ.get("FLOWHQ_HOST", "")

    def filter(self, record: logging.LogRecord) -> bool:
        if self.tenant and not hasattr(record, "tenant"):
            record.tenant = self.tenant
        if self.host and not hasattr(record, "host"):
            record.host = self.host
        return True


class StructuredFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        parts = [ts, record.levelname, record.name]
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        for key in ("tenant", "host"):
            if key in extras:
                parts.append(f"{key}={_quote(extras.pop(key))}")
        parts.extend(f"{key}={_quote(value)}" for key, value in sorted(extras.items()))
        parts.append(f"msg={_quote(record.getMessage())}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
