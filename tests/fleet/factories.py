from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from workers.models import FleetHost


def live_host(name: str, capacity: int = 10) -> FleetHost:
    return FleetHost.objects.create(
        name=name, capacity=capacity, heartbeat_at=timezone.now(), stale_after=timezone.now() + timedelta(minutes=5)
    )


def dead_host(name: str, capacity: int = 10) -> FleetHost:
    return FleetHost.objects.create(
        name=name, capacity=capacity, heartbeat_at=timezone.now() - timedelta(minutes=5),
        stale_after=timezone.now() - timedelta(minutes=4),
    )
