"""Flower behind authentication, and no secret where settings are shown (issue 11, finding 9).

Flower is started exactly as the Procfile starts it; a real Celery worker whose broker URL holds
a password reports its configuration to `inspect conf` and to Flower's worker page.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.views.debug import get_default_exception_reporter_filter

from flowhq.celery import app
from flowhq.censor import censored_conf
from tests.harness import ROOT, child_env, free_port, wait_for

pytestmark = pytest.mark.integration

SECRET = "s3cret-redis-password"
AUTH = ("ops", "flower-test-password")


def redis_url_with_password() -> str:
    """The test Redis database, with a user name and password in its URL. Redis's `default` user has
    no password here (`nopass`), so it accepts any: the URL works, and the password must not show."""
    from django.conf import settings

    return re.sub(r"^redis://(?:[^@/]*@)?", f"redis://default:{SECRET}@", settings.REDIS_URL)


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name}: line in the Procfile")


def start(command: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`command` through a shell, as honcho runs a Procfile line, with the venv's commands on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with log.open("ab") as out:
        return subprocess.Popen(["/bin/sh", "-c", command], cwd=ROOT, env=child_env(PATH=path, **env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The shell and what it started (its own process group) — only processes this test started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a child that outlived the shell
    except ProcessLookupError:
        pass


@pytest.fixture
def flower(tmp_path, transactional_db) -> Iterator[str]:
    port = free_port()
    proc = start(procfile_command("flower"), tmp_path / "flower.log", FLOWER_PORT=str(port),
                 FLOWER_BASIC_AUTH=":".join(AUTH), REDIS_URL=redis_url_with_password())
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthcheck", timeout=2).status_code in (200, 401), 60,
                 what=f"flower to listen:\n{(tmp_path / 'flower.log').read_text(errors='replace')}")
        yield base
    finally:
        stop(proc)


def test_the_procfile_starts_flower_with_basic_auth_from_the_environment():
    command = procfile_command("flower")
    assert "--basic-auth=${FLOWER_BASIC_AUTH:?" in command


def test_flower_as_the_procfile_starts_it_refuses_anonymous_callers(flower):
    assert requests.get(f"{flower}/", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert requests.get(f"{flower}/", auth=("ops", "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{flower}/", auth=AUTH, timeout=10).status_code == 200


def test_flower_does_not_start_without_a_password(tmp_path, db):
    log = tmp_path / "flower.log"
    proc = start(procfile_command("flower"), log, FLOWER_PORT=str(free_port()), FLOWER_BASIC_AUTH="")
    try:
        assert proc.wait(30) != 0
    finally:
        stop(proc)
    assert "FLOWER_BASIC_AUTH" in log.read_text()


@pytest.fixture
def worker(tmp_path, transactional_db) -> Iterator[str]:
    """A plain Celery worker of the app on a queue of its own, its broker URL holding a password."""
    node = f"conf-{uuid.uuid4().hex[:8]}@edge"
    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    assert celery
    proc = start(f"exec {celery} -A flowhq worker -n {node} -Q {node.split('@')[0]} --pool solo "
                 "--without-mingle --without-gossip --loglevel INFO", tmp_path / "worker.log",
                 REDIS_URL=redis_url_with_password())
    try:
        wait_for(lambda: app.control.inspect(destination=[node], timeout=1).ping(), 60,
                 what=f"the worker:\n{(tmp_path / 'worker.log').read_text(errors='replace')}")
        yield node
    finally:
        stop(proc)


def test_a_worker_reports_its_configuration_with_no_password_in_it(worker, flower):
    reported = app.control.inspect(destination=[worker], timeout=5).conf()[worker]
    assert SECRET not in repr(reported)
    assert reported["CELERY_BROKER_URL"].startswith("redis://default:********@127.0.0.1")
    assert reported["REDIS_URL"] == reported["CELERY_BROKER_URL"]
    assert reported["CACHES"]["default"]["LOCATION"] == reported["REDIS_URL"]
    assert reported["DATABASE_URL"] == "********"
    assert reported["SECRET_KEY"] == "********"
    assert reported["PORTAL_INTERNAL_KEY"] == "********"

    # Flower's worker page shows that configuration (its Config tab): no password there either.
    page = wait_for(lambda: (r := requests.get(f"{flower}/worker/{worker}", auth=AUTH, timeout=10)).ok
                    and "CELERY_BROKER_URL" in r.text and r, 30, what="Flower's worker page")
    assert SECRET not in page.text
    assert "redis://default:********@127.0.0.1" in page.text
    workers = requests.get(f"{flower}/api/workers", params={"refresh": 1}, auth=AUTH, timeout=10)
    assert SECRET not in workers.text


def test_urls_are_masked_at_any_depth_in_a_celery_conf_table():
    table = {
        "REDIS_URL": f"redis://:{SECRET}@cache.internal:6379/1",
        "CACHES": {"default": {"LOCATION": f"rediss://user:{SECRET}@cache.internal/2"}},
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"sentinels": [f"redis://:{SECRET}@s1/0"]},
        "WHATSAPP_WEB_URL": "https://web.whatsapp.com",
        "DEMO_ADMIN_PASSWORD": SECRET,
        "broken": f"redis://:{SECRET}@[::1",
    }
    shown = censored_conf(table)
    assert SECRET not in repr(shown)
    assert shown["REDIS_URL"] == "redis://:********@cache.internal:6379/1"
    assert shown["WHATSAPP_WEB_URL"] == "https://web.whatsapp.com"


def test_djangos_debug_pages_mask_urls_too(settings):
    settings.REDIS_URL = f"redis://:{SECRET}@cache.internal:6379/1"
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    safe = get_default_exception_reporter_filter().get_safe_settings()
    assert SECRET not in repr(safe)
    assert safe["CELERY_BROKER_URL"] == "redis://:********@cache.internal:6379/1"
