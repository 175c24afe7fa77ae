from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Prometheus metrics of the whole fleet: /metrics on web, the counting hooks everywhere."""

    name = "metrics"

    def ready(self) -> None:
        from metrics import receivers

        receivers.connect()
