"""One small, explicit state machine per status field.

Each machine lists its legal moves once; the transition function of each model
(`tenant_transition`, `session_transition`, `worker_transition`) asks it before
writing, so an illegal move is refused in one place instead of being guarded
(or forgotten) at every call site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from django.db.models import Model

from flowhq.errors import IllegalTransition

S = TypeVar("S", bound=str)


class StateMachine(Generic[S]):
    def __init__(self, name: str, moves: Mapping[S, Iterable[S]], *, any_to: Iterable[S] = ()) -> None:
        self.name = name
        self._moves: dict[S, frozenset[S]] = {
            source: frozenset(targets) | frozenset(any_to) for source, targets in moves.items()
        }

    def can(self, source: S, target: S) -> bool:
        return target in self._moves.get(source, frozenset())

    def check(self, source: S, target: S) -> None:
        if not self.can(source, target):
            raise IllegalTransition(self.name, str(source), str(target))

    def targets(self, source: S) -> frozenset[S]:
        return self._moves.get(source, frozenset())


M = TypeVar("M", bound=Model)


def move(
    model: type[M],
    pk: Any,
    *,
    machine: StateMachine[Any],
    field: str,
    to: str,
    fields: Mapping[str, Any] | Callable[[M], Mapping[str, Any]] | None = None,
    guard: Callable[[M], None] | None = None,
) -> tuple[M, str]:
    """Lock the row, check the move, write status and `fields` together.

    Returns the saved row and the status it had. Moving to the status the row
    already has is allowed (it only writes `fields`), which is what makes the
    callers idempotent. `guard` may raise to refuse the move on other grounds;
    `fields` may be a function of the locked row (e.g. to bump a counter).
    Must run inside `transaction.atomic()`.
    """
    obj = model._default_manager.select_for_update().get(pk=pk)
    previous = getattr(obj, field)
    if guard is not None:
        guard(obj)
    if previous != to:
        machine.check(previous, to)
    values = dict(fields(obj) if callable(fields) else (fields or {}))
    setattr(obj, field, to)
    for name, value in values.items():
        setattr(obj, name, value)
    update_fields = {field, *values}
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        update_fields.add("updated_at")
    obj.save(update_fields=sorted(update_fields))
    return obj, previous
