from typing import Any

from django.http import HttpRequest

class AxesStandaloneBackend:
    # Returns nothing: it raises AxesBackendPermissionDenied for a locked-out client.
    def authenticate(
        self, request: HttpRequest, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None: ...
