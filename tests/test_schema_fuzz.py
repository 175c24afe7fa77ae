"""The OpenAPI schema is valid, complete, and true: fuzzing every operation finds no 5xx
and no response the schema does not describe.

schemathesis reads the schema from a real HTTP server (pytest-django's live
server) and sends generated requests, valid and invalid, as staff and as portal
users (a member and a newcomer), to every operation in it, so endpoints added
later are fuzzed too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import schemathesis
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks
from urllib3.response import HTTPResponse

from tenants import services
from tenants.models import MessageLog, PortalMembership, SetupRequest, Tenant, WhatsAppSession
from tenants.states import SessionState

ROOT = Path(__file__).resolve().parent.parent
KEY = "fuzz-portal-key"
MEMBER = "member@fuzz.example"
NEWCOMER = "newcomer@fuzz.example"
STAFF_NAME = "fuzz-staff"
QR = "data:image/png;base64,RlVaWi1RUg=="
# Examples per operation and mode: as many as fit ~600 in all, between 4 and 12 (bounded time).
TOTAL_EXAMPLES = 600
BUDGET_SECONDS = 100

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


def test_the_schema_generates_and_validates_without_a_single_warning():
    """`manage.py spectacular --validate --fail-on-warn`: every view documents itself."""
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    hint = "\nEvery APIView needs @extend_schema(request=..., responses={status: serializer}) on each method."
    assert result.returncode == 0, result.stderr + result.stdout + hint


def ensure_world() -> dict[str, object]:
    """The data the fuzzer works on; recreated when a fuzzed DELETE or PATCH took it away."""
    staff, _ = get_user_model().objects.get_or_create(username=STAFF_NAME, defaults={"is_staff": True})
    # A token, not a password: hashing a password on every request would be most of the run.
    token, _ = Token.objects.get_or_create(user=staff)
    tenant = Tenant.objects.filter(members__email=MEMBER).first()
    if tenant is None:
        tenant = Tenant.objects.filter(slug="fuzz-co").first() or services.tenant_create(name="Fuzz Co", slug="fuzz-co")
        PortalMembership.objects.filter(email__iexact=MEMBER).delete()
        services.membership_add(tenant=tenant, email=MEMBER)
    session = WhatsAppSession.objects.get(tenant=tenant)
    if session.state != SessionState.QR_READY:
        services.session_transition(tenant_id=tenant.pk, to=SessionState.QR_READY, qr=QR, qr_issued_at=timezone.now())
    if not SetupRequest.objects.filter(email=NEWCOMER).exists():  # decided: the newcomer may ask again
        SetupRequest.objects.create(email=NEWCOMER, business_name="Newco", phone="15550009999", state="REJECTED")
    if not MessageLog.objects.filter(tenant=tenant).exists():
        for n in range(3):
            MessageLog.objects.create(tenant=tenant, message_id=f"m{n}", chat="c@c.us",
                                      direction="in" if n % 2 else "out", status="received", body=f"hi {n}")
    return {"tenant_id": tenant.pk, "token": token.key}


def auth_headers(token: str, email: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", "X-Portal-Key": KEY, "X-User-Email": email}


@pytest.fixture
def urllib3_read1(monkeypatch):
    """schemathesis reads an event stream with `HTTPResponse.read1`, which urllib3 1.26 (pinned) lacks.

    Reading up to `amt` bytes instead waits for the (short, see fuzz_settings) stream to end.
    """
    if not hasattr(HTTPResponse, "read1"):
        monkeypatch.setattr(
            HTTPResponse, "read1",
            lambda self, amt=None, decode_content=None: self.read(amt, decode_content=decode_content),
            raising=False,
        )


@pytest.fixture
def fuzz_settings(settings):
    settings.PORTAL_INTERNAL_KEY = KEY
    # Keep each event stream short: the fuzzer reads a whole response.
    settings.PORTAL_SSE_LIFETIME_SECONDS = 0.3
    settings.PORTAL_SSE_POLL_MS = 50
    settings.PORTAL_SSE_RETRY_MS = 1000
    return settings


@pytest.mark.django_db(transaction=True)
def test_the_schema_and_swagger_ui_are_served_to_anyone(live_server, fuzz_settings):
    schema = requests.get(f"{live_server.url}/api/schema/", timeout=30)
    assert schema.status_code == 200
    assert "openapi: 3" in schema.text
    as_json = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=30)
    assert as_json.json()["components"]["securitySchemes"]["PortalKey"]["name"] == "X-Portal-Key"

    docs = requests.get(f"{live_server.url}/api/docs/", timeout=30)
    assert docs.status_code == 200
    assert docs.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]*drf_spectacular_sidecar[^"]*)"', docs.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), docs.text
    for asset in assets:  # served by this server, not a CDN: works offline
        assert asset.startswith("/"), asset
        assert requests.get(f"{live_server.url}{asset}", timeout=30).status_code == 200, asset


@pytest.mark.django_db(transaction=True)
def test_fuzzing_every_operation_finds_no_server_error_and_no_undocumented_response(
    live_server, fuzz_settings, urllib3_read1
):
    ensure_world()
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"GET /api/portal/tenant/current/status", "GET /api/portal/tenant/current/events",
            "GET /api/admin/tenants/{tenant_id}/logs", "POST /api/portal/setup-request"} <= labels

    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []
    statuses: dict[str, set[int]] = {op.label: set() for op in operations}
    # Closed at the end: a kept-alive connection holds a live-server thread and its database connection.
    with requests.Session() as session:
        fuzz_all(operations, session, live_server.url, deadline, failures, statuses)
    assert not failures, "\n\n".join(failures)
    # The fuzzer got past authentication and validation: every read of this world (no ids but the
    # tenant's in its path) was answered for real at least once.
    unanswered = [
        label for label, seen in statuses.items()
        if label.startswith("GET ") and not re.search(r"\{(?!tenant_id\})", label) and 200 not in seen
    ]
    assert not unanswered, statuses


def fuzz_all(
    operations: list, session: requests.Session, base_url: str, deadline: float, failures: list[str],
    statuses: dict[str, set[int]],
) -> None:
    examples = max(4, min(12, TOTAL_EXAMPLES // (2 * len(operations))))
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                pytest.fail(f"fuzzing went over its {BUDGET_SECONDS}s budget at {operation.label}")
            try:
                fuzz_operation(operation, mode, session, base_url, statuses[operation.label], examples)
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")


def fuzz_operation(
    operation: schemathesis.APIOperation, mode: GenerationMode, session: requests.Session, base_url: str,
    seen: set[int], examples: int,
) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=["explicit", "generate"])
    @given(case=operation.as_strategy(generation_mode=mode), real_tenant=st.booleans(),
           email=st.sampled_from([MEMBER, NEWCOMER]))
    def fuzz(case: schemathesis.Case, real_tenant: bool, email: str) -> None:
        world = ensure_world()
        if real_tenant and "tenant_id" in (case.path_parameters or {}):
            case.path_parameters["tenant_id"] = str(world["tenant_id"])
        response = case.call_and_validate(
            base_url=base_url, session=session, headers=auth_headers(str(world["token"]), email), checks=CHECKS,
            timeout=15,
        )
        seen.add(response.status_code)

    fuzz()
