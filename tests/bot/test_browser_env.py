"""Chromium runs with an allow-listed environment: no Django secret, database or broker URL."""

from __future__ import annotations

import psutil
import pytest
from django.conf import settings

from tests.botkit import Sim, chromium_of, link, start_agent
from tests.harness import wait_for
from tests.waits import worker
from workers.bot.browser_env import allowed, chromium_env

PHONE = "4915100000021"
SECRETS = {
    "SECRET_KEY": "canary-secret-key-0123456789abcdef0123456789abcdef",
    "PORTAL_INTERNAL_KEY": "canary-portal-key-0123456789",
    "FLOWHQ_TEST_CANARY": "canary-anything-else",
}
NEVER = {"SECRET_KEY", "PORTAL_INTERNAL_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
# Set by the shell that runs Debian's /usr/bin/chromium wrapper, not passed on from the worker.
SET_BY_THE_WRAPPER = {"PWD"}


def test_only_allowed_variables_pass():
    env = chromium_env({"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "TZ": "UTC", "TENANT_ID": "7",
                        "SECRET_KEY": "s", "DATABASE_URL": "postgres://u:p@h/db", "AWS_SECRET_ACCESS_KEY": "x"})
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "TZ": "UTC", "TENANT_ID": "7"}
    assert chromium_env({})["PATH"]  # Chromium's wrapper needs a search path


@pytest.mark.integration
def test_the_bots_chromium_sees_none_of_the_workers_secrets(bot_fleet, sim: Sim, tenant):
    bot_fleet.env.update(SECRETS, CELERY_BROKER_URL=settings.REDIS_URL)
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    worker_env = psutil.Process(worker(tenant.pk).pid).environ()
    assert worker_env.keys() >= NEVER  # the worker has them
    assert worker_env["SECRET_KEY"] == SECRETS["SECRET_KEY"]
    browsers = wait_for(lambda: chromium_of(tenant.pk), 10, what="Chromium processes")
    assert len(browsers) >= 3  # the browser, its zygotes and renderers, and the page's renderer
    secret_values = {worker_env[name] for name in (*NEVER, "FLOWHQ_TEST_CANARY")}
    for pid in browsers:
        env = psutil.Process(pid).environ()
        assert not NEVER & env.keys(), (pid, sorted(env))
        inherited = {name for name in env if name in worker_env and not allowed(name)} - SET_BY_THE_WRAPPER
        assert not inherited, (pid, sorted(inherited))
        assert not [value for value in env.values() if any(secret in value for secret in secret_values)], pid
        assert env["TENANT_ID"] == str(tenant.pk)  # the agent still finds a dead worker's leftovers by it
