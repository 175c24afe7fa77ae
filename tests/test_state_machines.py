"""Every status has one machine; its transition function refuses illegal moves."""

from __future__ import annotations

import itertools

import pytest

from flowhq.errors import IllegalTransition
from tenants.services import session_transition, tenant_transition
from tenants.states import (
    SESSION_MACHINE,
    SETUP_REQUEST_MACHINE,
    TENANT_MACHINE,
    SessionState,
    SetupRequestState,
    TenantStatus,
)
from workers.models import WorkerTransition
from workers.states import WORKER_MACHINE, WorkerStatus
from workers.transitions import worker_transition

W, T, S = WorkerStatus, TenantStatus, SessionState

WORKER_LEGAL = {
    (W.STOPPED, W.STARTING), (W.STARTING, W.RUNNING), (W.RUNNING, W.STOPPING), (W.STOPPING, W.STOPPED),
    (W.STARTING, W.STOPPING), (W.ERROR, W.STARTING), (W.ERROR, W.STOPPING), (W.ERROR, W.STOPPED),
    *((source, W.ERROR) for source in W if source != W.ERROR),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(W, 2)))
def test_worker_machine_allows_exactly_the_designed_moves(source, target):
    assert WORKER_MACHINE.can(source, target) == ((source, target) in WORKER_LEGAL)


def test_worker_machine_refuses_with_a_clear_error():
    with pytest.raises(IllegalTransition) as caught:
        WORKER_MACHINE.check(W.STOPPED, W.RUNNING)
    assert caught.value.message == "worker cannot move from STOPPED to RUNNING"
    assert caught.value.status == 409


def test_the_happy_path_of_each_machine_is_legal():
    path = [W.STOPPED, W.STARTING, W.RUNNING, W.STOPPING, W.STOPPED]
    assert all(WORKER_MACHINE.can(a, b) for a, b in itertools.pairwise(path))
    path = [S.NEW, S.QR_READY, S.CONNECTED, S.DISCONNECTED, S.CONNECTED, S.LOGGED_OUT, S.QR_READY]
    assert all(SESSION_MACHINE.can(a, b) for a, b in itertools.pairwise(path))
    path = [T.NEW, T.STARTING, T.RUNNING, T.STOPPED, T.STARTING, T.ERROR, T.STARTING]
    assert all(TENANT_MACHINE.can(a, b) for a, b in itertools.pairwise(path))


@pytest.mark.parametrize(
    ("machine", "source", "target"),
    [
        (SESSION_MACHINE, S.NEW, S.QR_TIMEOUT),
        (SESSION_MACHINE, S.CONNECTED, S.NEW),
        (SESSION_MACHINE, S.CONNECTED, S.QR_TIMEOUT),
        (TENANT_MACHINE, T.NEW, T.RUNNING),
        (TENANT_MACHINE, T.STOPPED, T.ERROR),
        (SETUP_REQUEST_MACHINE, SetupRequestState.APPROVED, SetupRequestState.REJECTED),
        (SETUP_REQUEST_MACHINE, SetupRequestState.REJECTED, SetupRequestState.PENDING),
    ],
)
def test_illegal_moves_are_refused(machine, source, target):
    assert not machine.can(source, target)
    with pytest.raises(IllegalTransition):
        machine.check(source, target)


def test_worker_transition_records_each_move_with_its_reason(tenant):
    worker = tenant.worker
    worker_transition(worker_id=worker.pk, to=W.STARTING, reason="start requested")
    worker_transition(worker_id=worker.pk, to=W.RUNNING, reason="first heartbeat")
    worker_transition(worker_id=worker.pk, to=W.ERROR, reason="no heartbeat for 45s")
    worker.refresh_from_db()
    assert worker.status == W.ERROR
    assert worker.last_error == "no heartbeat for 45s"
    history = list(WorkerTransition.objects.filter(worker=worker).order_by("id").values_list(
        "from_status", "to_status", "reason"))
    assert history == [
        (W.STOPPED, W.STARTING, "start requested"),
        (W.STARTING, W.RUNNING, "first heartbeat"),
        (W.RUNNING, W.ERROR, "no heartbeat for 45s"),
    ]


def test_worker_transition_refuses_an_illegal_move_and_writes_nothing(tenant):
    with pytest.raises(IllegalTransition):
        worker_transition(worker_id=tenant.worker.pk, to=W.RUNNING, reason="skipping STARTING", pid=123)
    tenant.worker.refresh_from_db()
    assert tenant.worker.status == W.STOPPED
    assert tenant.worker.pid is None
    assert not WorkerTransition.objects.exists()


def test_a_move_to_the_current_status_only_writes_fields(tenant):
    worker_transition(worker_id=tenant.worker.pk, to=W.STOPPED, reason="noop", host="h1")
    tenant.worker.refresh_from_db()
    assert tenant.worker.host == "h1"
    assert not WorkerTransition.objects.exists()


def test_tenant_and_session_transitions_go_through_their_machines(tenant):
    tenant_transition(tenant_id=tenant.pk, to=T.STARTING, reason="start")
    with pytest.raises(IllegalTransition):
        tenant_transition(tenant_id=tenant.pk, to=T.NEW)
    session = session_transition(tenant_id=tenant.pk, to=S.QR_READY, qr="data:image/png;base64,xx")
    assert session.state == S.QR_READY
    session = session_transition(tenant_id=tenant.pk, to=S.CONNECTED, phone="4915100000001")
    assert (session.state, session.phone) == (S.CONNECTED, "4915100000001")
    with pytest.raises(IllegalTransition):
        session_transition(tenant_id=tenant.pk, to=S.NEW)


TENANT_LEGAL = {
    (T.NEW, T.STARTING), (T.NEW, T.STOPPED),
    (T.STARTING, T.RUNNING), (T.STARTING, T.STOPPED), (T.STARTING, T.ERROR),
    (T.RUNNING, T.STARTING), (T.RUNNING, T.STOPPED), (T.RUNNING, T.ERROR),
    (T.STOPPED, T.STARTING),
    (T.ERROR, T.STARTING), (T.ERROR, T.STOPPED),
}

SESSION_LEGAL = {
    (S.NEW, S.QR_READY), (S.NEW, S.CONNECTED), (S.NEW, S.DISCONNECTED), (S.NEW, S.LOGGED_OUT),
    (S.QR_READY, S.CONNECTED), (S.QR_READY, S.QR_TIMEOUT), (S.QR_READY, S.DISCONNECTED),
    (S.QR_READY, S.LOGGED_OUT), (S.QR_READY, S.NEW),
    (S.CONNECTED, S.DISCONNECTED), (S.CONNECTED, S.LOGGED_OUT), (S.CONNECTED, S.QR_READY),
    (S.DISCONNECTED, S.CONNECTED), (S.DISCONNECTED, S.QR_READY), (S.DISCONNECTED, S.LOGGED_OUT),
    (S.LOGGED_OUT, S.QR_READY), (S.LOGGED_OUT, S.CONNECTED), (S.LOGGED_OUT, S.NEW),
    (S.QR_TIMEOUT, S.QR_READY), (S.QR_TIMEOUT, S.CONNECTED), (S.QR_TIMEOUT, S.NEW),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(T, 2)))
def test_tenant_machine_allows_exactly_the_designed_moves(source, target):
    assert TENANT_MACHINE.can(source, target) == ((source, target) in TENANT_LEGAL)


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(S, 2)))
def test_session_machine_allows_exactly_the_designed_moves(source, target):
    assert SESSION_MACHINE.can(source, target) == ((source, target) in SESSION_LEGAL)


def test_a_finished_message_never_moves_again():
    from tenants.messages import MESSAGE_MACHINE, TERMINAL

    for done in TERMINAL:
        assert MESSAGE_MACHINE.targets(done) == frozenset()
