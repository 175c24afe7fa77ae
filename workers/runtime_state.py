"""What force-restart wipes: a tenant's runtime leftovers, never its WhatsApp link.

Removed: Chromium's profile locks (a crashed browser leaves them and the next
one may refuse the profile), crash dumps and caches. Kept: the profile's
storage (localStorage, IndexedDB, cookies), which is the linked session, so a
force-restart comes back CONNECTED without a new scan.
"""

from __future__ import annotations

import logging
import shutil

from workers.sessions import session_dir

log = logging.getLogger(__name__)

LOCK_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")
DISPOSABLE_DIRS = (
    "Crashpad", "ShaderCache", "GrShaderCache", "GraphiteDawnCache", "component_crx_cache",
    "Default/Cache", "Default/Code Cache", "Default/GPUCache", "Default/DawnCache",
)


def wipe_runtime_state(tenant_id: int) -> list[str]:
    profile = session_dir(tenant_id)
    removed = []
    for name in LOCK_FILES:
        path = profile / name
        if path.is_symlink() or path.exists():
            path.unlink(missing_ok=True)
            removed.append(name)
    for name in DISPOSABLE_DIRS:
        path = profile / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    log.info("runtime state wiped", extra={"tenant": tenant_id, "removed": ",".join(removed) or "-"})
    return removed
