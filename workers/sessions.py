"""Where a tenant's browser profile lives: SESSIONS_PATH/<tenant id>, mode 0700."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings


def session_dir(tenant_id: int, *, create: bool = False) -> Path:
    """The profile folder of `tenant_id`; no tenant id can name a path outside SESSIONS_PATH."""
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int) or tenant_id <= 0:
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    base = Path(settings.SESSIONS_PATH).resolve()
    path = (base / str(tenant_id)).resolve()
    if path.parent != base:
        raise ValueError(f"tenant {tenant_id} resolves outside SESSIONS_PATH")
    if create:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path
