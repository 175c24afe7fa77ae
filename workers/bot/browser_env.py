"""The environment Chromium is started with: an allow list, never the worker's own.

The tenant worker's environment holds the Django secrets (SECRET_KEY,
PORTAL_INTERNAL_KEY), the database and broker URLs and whatever else the
deployment set. Chromium renders a page FlowHQ does not control, as root with
`--no-sandbox` where it must, so it gets only what a browser needs — the
search path, home, temp folder, locale, time zone and XDG folders (Debian's
/usr/bin/chromium wrapper needs no more; it adds its own variables) — and
the three process tags the fleet agent finds a dead worker's leftover
Chromium by (workers/fleet/processes.py), none of them secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PASSED = (
    "PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ",
    "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
    "FONTCONFIG_PATH", "FONTCONFIG_FILE",
)
PASSED_PREFIXES = ("LC_",)
PROCESS_TAGS = ("FLOWHQ_ROLE", "FLOWHQ_HOST", "TENANT_ID")


def allowed(name: str) -> bool:
    return name in PASSED or name in PROCESS_TAGS or name.startswith(PASSED_PREFIXES)


def chromium_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowed variables of `environ` (the worker's, by default), and a PATH."""
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if allowed(name)}
    env.setdefault("PATH", os.defpath)
    return env
