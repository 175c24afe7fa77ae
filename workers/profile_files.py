"""A browser profile as one archive: what is packed, and how it is put back.

Packed: the whole profile folder except what force-restart would wipe anyway
(locks, crash dumps, caches) and our own marker. Put back: into a fresh folder
beside the profile, then swapped in, so a failed unpack never leaves half a
profile. The marker file records which backup the folder last matched, so a
host knows whether the database holds something newer than its own copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

from workers.runtime_state import DISPOSABLE_DIRS, LOCK_FILES

MARKER = ".flowhq-backup"
SKIPPED = {MARKER, *LOCK_FILES, *DISPOSABLE_DIRS, "GPUPersistentCache", "Default/Service Worker/CacheStorage"}


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(profile: Path) -> bytes:
    """The profile as a gzipped tar. Files that vanish while it is read (a running
    Chromium rotates some) are left out rather than failing the whole backup."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for root, dirs, files in os.walk(profile):
            relative_root = Path(root).relative_to(profile)
            dirs[:] = sorted(d for d in dirs if (relative_root / d).as_posix() not in SKIPPED)
            for name in sorted(files):
                relative = (relative_root / name).as_posix()
                if relative in SKIPPED:
                    continue
                path = Path(root) / name
                if path.is_symlink():
                    continue
                try:
                    tar.add(path, arcname=relative, recursive=False)
                except (FileNotFoundError, PermissionError):
                    continue
    return buffer.getvalue()


def unpack(data: bytes, profile: Path) -> None:
    """Replace `profile` with the archive's contents (mode 0700)."""
    fresh = profile.with_name(f".{profile.name}.restoring")
    old = profile.with_name(f".{profile.name}.replaced")
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    fresh.mkdir(mode=0o700)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(fresh, filter="data")  # no absolute paths, no "..", no links out
    os.chmod(fresh, 0o700)
    if profile.exists():
        profile.rename(old)
    fresh.rename(profile)
    shutil.rmtree(old, ignore_errors=True)


def local_digest(profile: Path) -> str | None:
    try:
        return (profile / MARKER).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def mark(profile: Path, digest: str) -> None:
    (profile / MARKER).write_text(digest)
