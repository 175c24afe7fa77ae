"""/healthz (liveness) and /readyz (the database and Redis answer), served by real gunicorn."""

from __future__ import annotations

import pytest
import requests

from tests.dbproxy import PostgresProxy
from tests.harness import free_port, gunicorn

pytestmark = pytest.mark.integration


def test_readyz_is_200_when_the_database_and_redis_answer(transactional_db, tmp_path):
    with gunicorn(tmp_path / "web.log") as web:
        response = requests.get(f"{web}/readyz", timeout=10)
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True
        assert {name: check["ok"] for name, check in body["checks"].items()} == {"database": True, "redis": True}
        assert requests.get(f"{web}/healthz", timeout=10).json() == {"ok": True}


def test_readyz_is_503_naming_redis_when_redis_is_unreachable_and_healthz_stays_200(transactional_db, tmp_path):
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with gunicorn(tmp_path / "web.log", REDIS_URL=closed, READYZ_TIMEOUT_MS="300") as web:
        response = requests.get(f"{web}/readyz", timeout=20)
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert (body["ok"], body["failed"]) == (False, ["redis"])
        assert body["checks"]["database"]["ok"] is True
        assert "Connection" in body["checks"]["redis"]["error"]
        assert requests.get(f"{web}/healthz", timeout=10).status_code == 200, "liveness does not depend on Redis"


def test_readyz_is_503_naming_the_database_during_a_database_outage(transactional_db, tmp_path):
    proxy = PostgresProxy()
    try:
        with gunicorn(tmp_path / "web.log", DATABASE_URL=proxy.url()) as web:
            assert requests.get(f"{web}/readyz", timeout=10).status_code == 200
            with proxy.outage():
                response = requests.get(f"{web}/readyz", timeout=20)
                assert response.status_code == 503
                assert (response.json()["failed"], response.json()["checks"]["redis"]["ok"]) == (["database"], True)
                assert requests.get(f"{web}/healthz", timeout=10).status_code == 200
            assert requests.get(f"{web}/readyz", timeout=10).status_code == 200, "ready again once it is back"
    finally:
        proxy.close()
