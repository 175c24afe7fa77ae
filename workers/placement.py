"""Which host a tenant's worker runs on: the live host with the most free capacity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Now
from django_stubs_ext import WithAnnotations

from workers.models import FleetHost, WorkerProcess
from workers.states import DesiredState


def live_hosts() -> QuerySet[FleetHost]:
    """Hosts whose agent heartbeat is fresh (judged by the database clock)."""
    return FleetHost.objects.filter(stale_after__gt=Now())


def host_is_live(name: str) -> bool:
    return bool(name) and live_hosts().filter(name=name).exists()


class Load(TypedDict):
    """What hosts_with_load() adds to each host: its running workers, and the slots left."""

    assigned: int
    free: int


def hosts_with_load() -> QuerySet[WithAnnotations[FleetHost, Load]]:
    assigned = (
        WorkerProcess.objects.filter(host=OuterRef("name"), desired_state=DesiredState.RUNNING)
        .order_by()
        .values("host")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return FleetHost.objects.annotate(
        assigned=Coalesce(Subquery(assigned, output_field=IntegerField()), Value(0)),
        free=F("capacity") - F("assigned"),
    )


def choose_host(*, exclude: Iterable[str] = ()) -> str | None:
    """The live, non-draining host with the most free slots, or None."""
    best = (
        hosts_with_load()
        .filter(pk__in=live_hosts().values("pk"), draining=False, free__gt=0)
        .exclude(name__in=list(exclude))
        .order_by("-free", "name")
        .values_list("name", flat=True)
        .first()
    )
    return best
