"""Readiness (and the liveness it is not), for load balancers and orchestrators.

`/healthz` (flowhq/urls.py) answers as long as the web process serves requests (it touches nothing else: a
database outage must not get every web process restarted). `/readyz` says whether this process
can do its work now: the database and Redis (broker and cache) each answer a trivial query
within READYZ_TIMEOUT_MS; otherwise 503 naming what failed, so a balancer sends traffic elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> None:
    timeout = settings.READYZ_TIMEOUT_MS / 1000
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "redis": _redis}


def readiness() -> dict[str, dict[str, Any]]:
    """Each dependency: `{"ok": bool, "ms": float}` and, when it failed, `"error"` (its kind and message)."""
    results: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return results


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and Redis answer; 503 naming what failed otherwise."""
    checks = readiness()
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    body = {"ok": not failed, "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)
