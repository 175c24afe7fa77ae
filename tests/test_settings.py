"""Settings come from the environment; a malformed value fails loudly, by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowhq.env import Env, EnvError, load_dotenv

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("reader", "value", "expected"),
    [
        (lambda e: e.int("N", 5), "12", 12),
        (lambda e: e.int("N", 5), "", 5),
        (lambda e: e.bool("N", False), "yes", True),
        (lambda e: e.bool("N", True), "off", False),
        (lambda e: e.list("N", ["x"]), "a, b,,c", ["a", "b", "c"]),
        (lambda e: e.url("N", "redis://d", schemes=("redis",)), "redis://h:1/2", "redis://h:1/2"),
    ],
)
def test_values_are_parsed(reader, value, expected):
    assert reader(Env({"N": value})) == expected


@pytest.mark.parametrize(
    ("reader", "value"),
    [
        (lambda e: e.int("N", 5), "fifteen"),
        (lambda e: e.int("N", 5, minimum=1), "0"),
        (lambda e: e.bool("N", False), "maybe"),
        (lambda e: e.url("N", "redis://d", schemes=("redis",)), "http://nope"),
    ],
)
def test_malformed_values_name_the_variable(reader, value):
    with pytest.raises(EnvError) as caught:
        reader(Env({"N": value}))
    assert caught.value.name == "N"
    assert str(caught.value).startswith(f"N={value!r} is not valid")


def _django_setup(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLOWHQ_DOTENV": "0", **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.HEARTBEAT_INTERVAL_MS, settings.STALE_THRESHOLD_MS, settings.DEBUG)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HEARTBEAT_INTERVAL_MS", "abc"),
        ("RATE_LIMIT_MAX_PER_MINUTE", "-3"),
        ("DEBUG", "perhaps"),
        ("DATABASE_URL", "mysql://x/y"),
        ("STALE_THRESHOLD_MS", "10"),
        ("PORTAL_SSE_MAX_STREAMS", "8"),  # as many as WEB_THREADS [8]: no thread left for the API
    ],
)
def test_the_settings_module_refuses_a_malformed_variable(variable, value):
    result = _django_setup(**{variable: value})
    assert result.returncode != 0
    assert f"{variable}=" in result.stderr


def test_defaults_follow_the_design():
    env = {k: v for k, v in os.environ.items() if k not in {"HEARTBEAT_INTERVAL_MS", "STALE_THRESHOLD_MS", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; "
         "print(s.HEARTBEAT_INTERVAL_MS, s.STALE_THRESHOLD_MS, s.DEBUG, s.RATE_LIMIT_MAX_PER_MINUTE, "
         "s.CHAT_QUEUE_SIZE, s.RECONNECT_MAX_ATTEMPTS, s.WHATSAPP_WEB_URL)"],
        cwd=ROOT, env={**env, "FLOWHQ_DOTENV": "0"}, capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.split() == ["15000", "45000", "False", "20", "50", "10", "https://web.whatsapp.com"]


def test_no_database_url_means_a_sqlite_file_in_wal_mode(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.db import connection; "
         "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(connection.vendor, c.fetchone()[0])"],
        cwd=ROOT, env={**env, "FLOWHQ_DOTENV": "0", "FLOWHQ_VAR_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.split() == ["sqlite", "wal"], result.stderr
    assert (tmp_path / "flowhq.sqlite3").exists()


def test_dotenv_fills_only_what_is_unset(tmp_path):
    (tmp_path / ".env").write_text("# comment\nA=from-file\nB='quoted'\n\nbroken line\n")
    environ = {"A": "from-env"}
    load_dotenv(tmp_path / ".env", environ)
    assert environ == {"A": "from-env", "B": "quoted"}


def test_chromium_keeps_its_sandbox_except_as_root():
    def sandbox(**overrides: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "CHROMIUM_SANDBOX"}
        done = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
             "from workers.bot.browser import chromium_args; "
             "print(settings.CHROMIUM_SANDBOX, '--no-sandbox' in chromium_args())"],
            cwd=ROOT, env={**env, "FLOWHQ_DOTENV": "0", **overrides}, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    as_root = os.geteuid() == 0
    assert sandbox() == ("False True" if as_root else "True False")
    assert sandbox(CHROMIUM_SANDBOX="0") == "False True"
    assert sandbox(CHROMIUM_SANDBOX="1") == "True False"
