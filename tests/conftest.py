from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Tenant
from tests.harness import Fleet

# Fixtures for the bot against the simulator (sim, bot_fleet).
pytest_plugins = ["tests.botkit"]

STAFF_PASSWORD = "staff-pass-123"


@pytest.fixture(scope="session", autouse=True)
def _redis_of_its_own() -> Iterator[None]:
    """The suite owns a Redis database number; it starts and ends empty."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0, "tests flush Redis: point REDIS_URL at a database number of its own (not 0)"
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="staff", password=STAFF_PASSWORD, is_staff=True, email="staff@example.com"
    )


@pytest.fixture
def api(staff_user) -> APIClient:
    """An API client authenticated as staff with HTTP Basic."""
    client = APIClient()
    token = base64.b64encode(f"staff:{STAFF_PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def make_tenant(db) -> Callable[..., Tenant]:
    def make(name: str = "Acme", **kwargs: object) -> Tenant:
        return services.tenant_create(name=name, **kwargs)

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def fleet(tmp_path, transactional_db) -> Iterator[Fleet]:
    """Real fleet agents (and beat) for this test; all stopped, with what they started, at the end."""
    harness = Fleet(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
