from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # Registers the OpenAPI description of the portal's authentication.
        from portal import schema  # noqa: F401
