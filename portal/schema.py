"""OpenAPI description of the portal's two headers, as two API-key security schemes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from portal.auth import KEY_HEADER, USER_HEADER


class PortalKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "portal.auth.PortalKeyAuthentication"
    # Both headers go together on every portal call (one requirement, AND).
    name = ["PortalKey", "PortalUser"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": KEY_HEADER,
                "description": "The shared secret PORTAL_INTERNAL_KEY (server to server only).",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": USER_HEADER,
                "description": "Email of the portal's signed-in user; decides the one tenant they see.",
            },
        ]
