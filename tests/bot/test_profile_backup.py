"""Profile backups: a tenant's WhatsApp link follows it to another host."""

from __future__ import annotations

import io
import signal
import tarfile
from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import services
from tests.botkit import BOT_ENV, Sim, link, session, worker
from tests.harness import Fleet, wait_for
from tests.waits import wait_host
from workers.models import FleetHost, ProfileBackup, WorkerProcess, WorkerTransition
from workers.profile_backups import profile_pack, profile_restore, profile_store
from workers.profile_files import MARKER, local_digest, pack, unpack

PHONE = "4915100000001"
CUSTOMER = "4917000000001"


def make_profile(path, files: dict[str, str]):
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


# --- the files: what is packed, how it is put back -------------------------------------------


def test_a_profile_is_packed_without_locks_caches_or_our_marker_and_put_back_whole(tmp_path):
    source = make_profile(tmp_path / "a", {
        "Local State": "{}", "Default/IndexedDB/wa.leveldb/000003.log": "link",
        "Default/Local Storage/leveldb/CURRENT": "x", "SingletonLock": "", "Default/Cache/data_0": "big",
        "Default/Code Cache/js/1": "big", "Crashpad/dump": "big", MARKER: "old",
    })
    with tarfile.open(fileobj=io.BytesIO(pack(source)), mode="r:gz") as tar:
        names = set(tar.getnames())
    assert {"Local State", "Default/IndexedDB/wa.leveldb/000003.log", "Default/Local Storage/leveldb/CURRENT"} <= names
    assert not {n for n in names if n.startswith(("SingletonLock", "Default/Cache", "Default/Code Cache", "Crashpad",
                                                   MARKER))}

    target = make_profile(tmp_path / "b", {"Default/IndexedDB/stale.log": "someone else's link"})
    unpack(pack(source), target)
    assert (target / "Default/IndexedDB/wa.leveldb/000003.log").read_text() == "link"
    assert not (target / "Default/IndexedDB/stale.log").exists(), "the old profile is replaced, not merged"
    assert target.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"], "no half-made folder is left beside it"


def test_an_archive_cannot_write_outside_the_profile(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.TarError):
        unpack(buffer.getvalue(), tmp_path / "profile")
    assert not (tmp_path / "escaped").exists()


# --- the database: only the lease holder saves; a host restores what it did not come from -------


@pytest.fixture
def holder(tenant, settings, tmp_path):
    settings.SESSIONS_PATH = tmp_path / "sessions"
    FleetHost.objects.create(name="h1", capacity=5)
    WorkerProcess.objects.filter(tenant=tenant).update(
        epoch=7, lease_epoch=7, lease_expires_at=timezone.now() + timedelta(minutes=1), host="h1")
    make_profile(tmp_path / "sessions" / str(tenant.pk), {"Default/IndexedDB/link.log": "linked"})
    return tenant


def test_only_the_lease_holder_stores_a_backup(holder, tmp_path):
    data = profile_pack(tenant_id=holder.pk)
    assert profile_store(tenant_id=holder.pk, epoch=6, host="h0", data=data) is None, "a superseded epoch"
    assert not ProfileBackup.objects.exists()
    digest = profile_store(tenant_id=holder.pk, epoch=7, host="h1", data=data)
    backup = ProfileBackup.objects.get(tenant=holder)
    assert (backup.digest, backup.epoch, backup.host, backup.size) == (digest, 7, "h1", len(data))
    assert local_digest(tmp_path / "sessions" / str(holder.pk)) == digest
    WorkerProcess.objects.filter(tenant=holder).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert profile_store(tenant_id=holder.pk, epoch=7, host="h1", data=data) is None, "a lapsed lease"


def test_a_host_restores_a_backup_only_when_its_profile_did_not_come_from_it(holder, settings, tmp_path):
    profile_store(tenant_id=holder.pk, epoch=7, host="h1", data=profile_pack(tenant_id=holder.pk))
    assert profile_restore(tenant_id=holder.pk) is False, "this profile is the backup"

    settings.SESSIONS_PATH = tmp_path / "elsewhere"  # another host: no profile of this tenant
    assert profile_restore(tenant_id=holder.pk) is True
    restored = tmp_path / "elsewhere" / str(holder.pk)
    assert (restored / "Default/IndexedDB/link.log").read_text() == "linked"
    assert profile_restore(tenant_id=holder.pk) is False

    services.tenant_update(tenant=holder, name="Renamed")  # unrelated: no effect
    assert profile_restore(tenant_id=holder.pk) is False


# --- end to end: a host dies, its tenant comes back linked on another one ----------------------


@pytest.mark.integration
def test_a_tenant_moved_to_a_host_without_its_profile_comes_back_linked_without_a_scan(
    fleet: Fleet, sim: Sim, tenant, tmp_path
):
    services.template_create(tenant=tenant, match="default", body="hello from wherever")
    fleet.env.update(BOT_ENV, WHATSAPP_WEB_URL=sim.url)
    host_a, host_b = fleet.new_host(), fleet.new_host()
    agent_a = fleet.agent(host_a, SESSIONS_PATH=str(tmp_path / "disk-a"))
    wait_host(host_a)
    linked = link(tenant.pk, sim, PHONE)
    backup = wait_for(lambda: ProfileBackup.objects.filter(tenant=tenant).first(), 30, what="the first backup")
    assert backup.host == host_a

    fleet.agent(host_b, SESSIONS_PATH=str(tmp_path / "disk-b"))
    wait_host(host_b)
    fleet.beat()
    fleet.stop(agent_a, signal.SIGKILL)  # host A's agent is gone; the sweep moves its tenant

    on_b = wait_for(lambda: (w := worker(tenant.pk)).host == host_b and w.status == "RUNNING" and w, 90,
                    what="the tenant running on host B")
    # The bot on host B may connect before its worker is marked RUNNING: what counts is that the
    # session was written CONNECTED after host B's process was spawned.
    spawned_b = WorkerTransition.objects.get(worker=on_b, epoch=on_b.epoch, to_status="STARTING").created_at
    # No scan: the link came with the backup (without it, host B would show a QR code and wait).
    moved = wait_for(lambda: (s := session(tenant.pk)).state == "CONNECTED" and s.updated_at > spawned_b and s,
                     60, what="connected from host B")
    assert moved.phone == linked.phone
    assert (tmp_path / "disk-b" / str(tenant.pk) / MARKER).read_text() == backup.digest
    sim.message(PHONE, "AFTER-MOVE", CUSTOMER, "still there?")
    replies = wait_for(lambda: sim.outbox(PHONE), 30, what="a reply from host B")
    assert [r["body"] for r in replies] == ["hello from wherever"]
