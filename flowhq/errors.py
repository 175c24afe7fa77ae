"""The application's error types.

Services raise these; one DRF exception handler (`flowhq.api.exceptions`) maps
each to an HTTP status and the JSON shape `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any


class FlowHQError(Exception):
    code = "error"
    status = 400
    # When set, the response tells the client when to try again (`Retry-After`).
    retry_after_seconds: int | None = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(FlowHQError):
    code = "not_found"
    status = 404


class Conflict(FlowHQError):
    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, machine: str, source: str, target: str) -> None:
        super().__init__(
            f"{machine} cannot move from {source} to {target}",
            details={"machine": machine, "from": source, "to": target},
        )
        self.source = source
        self.target = target


class ValidationFailed(FlowHQError):
    code = "invalid"
    status = 400


class Unavailable(FlowHQError):
    code = "unavailable"
    status = 503
