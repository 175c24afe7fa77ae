"""Profile backups in the database, so a tenant's WhatsApp link follows it to another host.

The worker holding the tenant's lease saves its profile a few seconds after it
connects, every `SESSION_BACKUP_INTERVAL_MS` while connected, and once more
after a graceful stop (Chromium closed: the cleanest copy). Before Chromium
starts, a worker unpacks the backup if its host's profile did not come from
it (no profile here, or an older one). A logout deletes the backup: the link
it holds is dead. With a shared `SESSIONS_PATH` this is redundant but harmless.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from workers.models import ProfileBackup, WorkerProcess
from workers.profile_files import digest_of, local_digest, mark, pack, unpack
from workers.sessions import session_dir

log = logging.getLogger(__name__)


def profile_restore(*, tenant_id: int) -> bool:
    """Unpack the tenant's backup over this host's profile unless the profile already matches it."""
    digest = ProfileBackup.objects.filter(tenant_id=tenant_id).values_list("digest", flat=True).first()
    if digest is None:
        return False
    profile = session_dir(tenant_id, create=True)
    if local_digest(profile) == digest:
        return False
    data = ProfileBackup.objects.filter(tenant_id=tenant_id, digest=digest).values_list("data", flat=True).first()
    if data is None:  # replaced a moment ago: the next start takes the new one
        return False
    data = bytes(data)
    if digest_of(data) != digest:
        log.error("profile backup is corrupt; keeping the local profile", extra={"digest": digest})
        return False
    unpack(data, profile)
    mark(profile, digest)
    log.info("profile restored from its backup", extra={"bytes": len(data), "digest": digest[:12]})
    return True


def profile_pack(*, tenant_id: int) -> bytes | None:
    """The profile packed (files only, no database: run it off the database thread), or None."""
    profile = session_dir(tenant_id)
    if not profile.is_dir():
        return None
    data = pack(profile)
    limit = settings.SESSION_BACKUP_MAX_MB * 2**20
    if len(data) > limit:
        log.warning("profile too large to back up", extra={"bytes": len(data), "limit": limit})
        return None
    return data


def profile_store(*, tenant_id: int, epoch: int, host: str, data: bytes) -> str | None:
    """Store a packed profile if this process (`epoch`) still holds the tenant's lease; its digest, or None."""
    digest = digest_of(data)
    with transaction.atomic():
        holder = (
            WorkerProcess.objects.select_for_update()
            .filter(tenant_id=tenant_id, epoch=epoch, lease_epoch=epoch, lease_expires_at__gt=Now())
            .values_list("pk", flat=True)
            .first()
        )
        if holder is None:
            log.info("profile not backed up: this process no longer holds the tenant")
            return None
        ProfileBackup.objects.update_or_create(
            tenant_id=tenant_id, defaults={"data": data, "digest": digest, "size": len(data), "epoch": epoch,
                                           "host": host},
        )
    mark(session_dir(tenant_id), digest)
    log.info("profile backed up", extra={"bytes": len(data), "digest": digest[:12]})
    return digest


def profile_backup_delete(*, tenant_id: int) -> None:
    ProfileBackup.objects.filter(tenant_id=tenant_id).delete()
