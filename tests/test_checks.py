from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

from flowhq.checks import chromium_check, secrets_check

ROOT = Path(__file__).resolve().parent.parent


@override_settings(PUPPETEER_EXECUTABLE_PATH="/nonexistent/chromium")
def test_a_missing_chromium_is_a_warning_naming_the_variable():
    [warning] = chromium_check()
    assert warning.id == "flowhq.W001"
    assert "PUPPETEER_EXECUTABLE_PATH" in warning.msg


@override_settings(DEBUG=False, SECRET_KEY="", PORTAL_INTERNAL_KEY="")
def test_missing_secrets_are_errors_in_production():
    assert {e.id for e in secrets_check()} == {"flowhq.E001", "flowhq.E002"}


@override_settings(DEBUG=True, SECRET_KEY="x", PORTAL_INTERNAL_KEY="")
def test_debug_does_not_demand_secrets():
    assert secrets_check() == []


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "FLOWHQ_DOTENV": "0", **env},
    )


def test_check_deploy_is_clean_with_production_variables():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="0", SECRET_KEY="p" * 30 + "-Q9z!x" + "r" * 30, PORTAL_INTERNAL_KEY="k" * 32,
        SECURE_SSL_REDIRECT="1", ALLOWED_HOSTS="flowhq.example.com", PUPPETEER_EXECUTABLE_PATH="/bin/true",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_fails_without_secret_key_in_production():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, "FLOWHQ_DOTENV": "0", "DEBUG": "0"},
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_no_migrations_are_missing():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
