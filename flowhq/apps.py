from django.apps import AppConfig


class FlowHQConfig(AppConfig):
    name = "flowhq"
    label = "flowhq"
    verbose_name = "FlowHQ"

    def ready(self) -> None:
        from flowhq import checks  # noqa: F401  (registers the system checks)
