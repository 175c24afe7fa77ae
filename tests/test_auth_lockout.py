"""Authentication under attack (issue 11, finding 8): failed sign-ins locked out per user and per
address (django-axes) for the admin, the API's Basic auth and the portal key, visible in the
admin; DRF throttling in Redis; the hasher runs once whether or not the user exists."""

from __future__ import annotations

import base64
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from flowhq import lockout
from flowhq.env import Env, EnvError
from tests.conftest import STAFF_PASSWORD

TENANTS = "/api/admin/tenants"
STATUS = "/api/portal/tenant/current/status"
SCHEMA = "/api/schema/?format=json"
PORTAL_KEY = "lockout-portal-key"
LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.PORTAL_INTERNAL_KEY = PORTAL_KEY


def basic_client(user: str, password: str, address: str = "10.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    return client


def portal_client(key: str, address: str, email: str = "owner@acme.example") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_X_PORTAL_KEY=key, HTTP_X_USER_EMAIL=email)
    return client


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- the Django admin -------------------------------------------------------------------------------


def test_the_admin_login_locks_out_after_repeated_failures_with_a_clear_page(staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    login = reverse("admin:login")
    browser = Client(REMOTE_ADDR="10.0.0.9")
    statuses = [browser.post(login, {"username": "staff", "password": f"wrong-{n}"}).status_code
                for n in range(LIMIT - 1)]
    assert statuses == [200] * (LIMIT - 1)  # the form again, with its error

    locked = browser.post(login, {"username": "staff", "password": "wrong-again"})
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "try again in 15 minutes" in page
    assert locked["Retry-After"] == "900"

    # Now even the right password is refused, and without the hasher running.
    with mock.patch.object(PBKDF2PasswordHasher, "encode", autospec=True) as encode:
        right = browser.post(login, {"username": "staff", "password": STAFF_PASSWORD})
    assert right.status_code == 429
    encode.assert_not_called()
    assert "_auth_user_id" not in browser.session


def test_an_operator_sees_the_lockout_in_the_admin_and_can_lift_it(staff_user, admin_client):
    login = reverse("admin:login")
    for n in range(LIMIT):
        Client(REMOTE_ADDR="10.0.0.8").post(login, {"username": "staff", "password": f"wrong-{n}"})

    page = admin_client.get(reverse("admin:axes_accessattempt_changelist") + "?locked_out=yes")
    assert page.status_code == 200
    text = page.content.decode()
    assert "10.0.0.8" in text
    assert ">staff<" in text
    assert "/admin/login/" in text

    attempt = AccessAttempt.objects.get(username="staff")
    assert attempt.failures_since_start == LIMIT
    attempt.delete()  # what the admin's delete action does: the lockout is lifted
    assert Client(REMOTE_ADDR="10.0.0.8").post(
        login, {"username": "staff", "password": STAFF_PASSWORD}).status_code == 302


# --- the API's Basic auth ---------------------------------------------------------------------------


def test_basic_auth_locks_out_a_user_with_a_429_from_any_address(staff_user):
    for n in range(LIMIT - 1):
        response = basic_client("staff", f"wrong-{n}", "10.0.1.1").get(TENANTS)
        assert (response.status_code, error_code(response)) == (401, "authentication_failed")
    locked = basic_client("staff", "wrong", "10.0.1.2").get(TENANTS)
    assert locked.status_code == 429
    assert error_code(locked) == "locked_out"
    assert locked["Retry-After"] == "900"
    assert "try again in 15 minutes" in locked.json()["error"]["message"]

    # Per user: the right password is refused from a fresh address too.
    right = basic_client("staff", STAFF_PASSWORD, "10.0.1.3").get(TENANTS)
    assert (right.status_code, error_code(right)) == (429, "locked_out")


def test_basic_auth_locks_out_an_address_whatever_the_user_names(staff_user):
    for n in range(LIMIT):
        basic_client(f"nobody-{n}", "guess", "10.0.2.1").get(TENANTS)
    refused = basic_client("staff", STAFF_PASSWORD, "10.0.2.1").get(TENANTS)
    assert (refused.status_code, error_code(refused)) == (429, "locked_out")
    # Per address: the same user from another address is let in.
    assert basic_client("staff", STAFF_PASSWORD, "10.0.2.2").get(TENANTS).status_code == 200


def test_a_nul_user_name_counts_as_a_failure_too(staff_user):
    for _ in range(LIMIT):
        assert basic_client("st\x00aff", "guess", "10.0.3.1").get(TENANTS).status_code in (401, 429)
    assert basic_client("staff", STAFF_PASSWORD, "10.0.3.1").get(TENANTS).status_code == 429


def test_a_malformed_body_does_not_stop_a_failure_from_being_counted(staff_user):
    client = basic_client("staff", "wrong", "10.0.4.1")
    response = client.generic("GET", TENANTS, "{not json", content_type="application/json")
    assert response.status_code == 401
    assert AccessAttempt.objects.get(ip_address="10.0.4.1").failures_since_start == 1


def test_a_success_resets_the_count_only_through_a_login(staff_user):
    # Basic auth never "logs in" (no session), so its failures stand until they are old.
    basic_client("staff", "wrong", "10.0.5.1").get(TENANTS)
    assert basic_client("staff", STAFF_PASSWORD, "10.0.5.1").get(TENANTS).status_code == 200
    assert AccessAttempt.objects.get(username="staff").failures_since_start == 1


# --- the portal's key ----------------------------------------------------------------------------------


def test_wrong_portal_keys_lock_out_their_address_only(db):
    for n in range(LIMIT - 1):
        response = portal_client(f"guess-{n}", "10.0.6.1").get(STATUS)
        assert (response.status_code, error_code(response)) == (401, "authentication_failed")
    locked = portal_client("guess-last", "10.0.6.1").get(STATUS)
    assert (locked.status_code, error_code(locked)) == (429, "locked_out")
    # The right key from that address is refused too: a locked-out address learns nothing.
    assert portal_client(PORTAL_KEY, "10.0.6.1").get(STATUS).status_code == 429
    # The portal itself, at its own address, is not locked out by someone else's guesses.
    assert portal_client(PORTAL_KEY, "10.0.6.2").get(STATUS).status_code == 404  # no tenant: but let in
    attempt = AccessAttempt.objects.get(ip_address="10.0.6.1")
    assert (attempt.username, attempt.failures_since_start) == (lockout.PORTAL_KEY, LIMIT)


def test_a_portal_key_failure_counts_against_the_address_not_a_shared_name():
    assert lockout.lockout_parameters(None, {"username": lockout.PORTAL_KEY}) == ["ip_address"]
    assert lockout.lockout_parameters(None, {"username": None}) == ["ip_address"]
    assert lockout.lockout_parameters(None, {"username": "staff"}) == ["username", "ip_address"]


# --- the hasher runs for unknown users as for known ones ------------------------------------------------


@pytest.mark.parametrize("user", ["staff", "no-such-user"])
def test_basic_auth_runs_the_password_hasher_once_whether_or_not_the_user_exists(staff_user, user):
    assert "PBKDF2PasswordHasher" in django_settings.PASSWORD_HASHERS[0]
    original = PBKDF2PasswordHasher.encode
    with mock.patch.object(PBKDF2PasswordHasher, "encode", autospec=True, side_effect=original) as encode:
        response = basic_client(user, "wrong-password", "10.0.7.1").get(TENANTS)
    assert response.status_code == 401
    assert encode.call_count == 1
    assert encode.call_args.args[1] == "wrong-password"


# --- DRF throttling -------------------------------------------------------------------------------------


def rates(settings, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_the_throttle_counts_live_in_redis(settings):
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL


def test_anonymous_calls_are_throttled_per_address_with_a_429(settings, db, redis_client):
    rates(settings, anon="3/minute")
    client = APIClient(REMOTE_ADDR="10.0.8.1")
    assert [client.get(SCHEMA).status_code for _ in range(3)] == [200] * 3
    throttled = client.get(SCHEMA)
    assert throttled.status_code == 429
    assert error_code(throttled) == "throttled"
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert redis_client.keys("*throttle_anon_10.0.8.1*"), "the count is in Redis, shared by every web worker"
    assert APIClient(REMOTE_ADDR="10.0.8.2").get(SCHEMA).status_code == 200


def test_authenticated_calls_are_throttled_per_user(settings, api):
    rates(settings, user="3/minute")
    assert [api.get(TENANTS).status_code for _ in range(3)] == [200] * 3
    throttled = api.get(TENANTS)
    assert (throttled.status_code, error_code(throttled)) == (429, "throttled")
    assert "Retry-After" in throttled


def test_portal_users_are_throttled_each_on_their_own(settings, db):
    rates(settings, user="2/minute")
    alice = portal_client(PORTAL_KEY, "10.0.9.1", "alice@example.com")
    assert [alice.get(STATUS).status_code for _ in range(2)] == [404, 404]
    assert alice.get(STATUS).status_code == 429
    assert portal_client(PORTAL_KEY, "10.0.9.1", "bob@example.com").get(STATUS).status_code == 404


def test_throttling_lets_calls_through_while_redis_is_down(settings, api, caplog):
    rates(settings, user="1/minute")
    settings.CACHES = {"default": {**django_settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    assert [api.get(TENANTS).status_code for _ in range(3)] == [200] * 3
    assert "API throttling skipped: the cache is unavailable" in caplog.text


def test_the_suite_runs_with_throttles_it_cannot_reach():
    """pyproject.toml sets them: the suite's thousands of calls from one address must not be throttled."""
    for rate in django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].values():
        count, _, period = rate.partition("/")
        assert int(count) >= 10000, rate
        assert period.startswith("m"), rate


@pytest.mark.parametrize("value", ["lots", "0/minute", "10/fortnight", "-1/s", "١٠/minute"])
def test_a_malformed_throttle_rate_stops_the_process_naming_the_variable(value):
    with pytest.raises(EnvError, match="API_THROTTLE_ANON"):
        Env({"API_THROTTLE_ANON": value}).rate("API_THROTTLE_ANON", "60/minute")
    assert Env({}).rate("API_THROTTLE_ANON", "60/minute") == "60/minute"
