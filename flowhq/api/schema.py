"""OpenAPI: the error shape as one component, documented on every operation.

Every error the API returns goes through `flowhq.api.exceptions.handle`, so every
4xx (and the portal's 503) has the body `{"error": {"code", "message", "details"}}`.
Rather than repeat that on each view, this drf-spectacular post-processing hook
adds the error responses an operation can produce, derived from what the
operation is (its security, parameters, body and method). Views that are added
later get them too; a view that documents an error status itself keeps its
description and gains the error body.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Every error: `{"error": {"code", "message", "details"}}`.',
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine-readable, e.g. `invalid`, `not_found`, `conflict`, "
                    "`not_authenticated`, `no_tenant`, `portal_disabled`.",
                },
                "message": {"type": "string", "description": "For humans."},
                "details": {
                    "type": "object",
                    "additionalProperties": {},
                    "description": "For `invalid`: field name → list of messages.",
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

# status → (component name, description)
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Invalid input (`invalid`), or malformed JSON or request text (`malformed_request`)."),
    "401": (
        "Unauthorized",
        "Missing or wrong credentials (`not_authenticated`, `authentication_failed`).",
    ),
    "403": ("Forbidden", "Authenticated, but not allowed (`permission_denied`)."),
    "404": ("NotFound", "No such resource, no such page, or (portal) the user has no tenant (`no_tenant`)."),
    "409": ("Conflict", "The request conflicts with the current state (`conflict`, `illegal_transition`)."),
    "413": ("PayloadTooLarge", "The request body is too large (`payload_too_large`)."),
    "415": ("UnsupportedMediaType", "The body is not JSON (`unsupported_media_type`)."),
    "429": (
        "TooManyRequests",
        "Too many calls (`throttled`), or too many failed sign-ins from this address or for this user "
        "(`locked_out`); `Retry-After` says when to try again.",
    ),
    "503": ("Unavailable", "Not available (`portal_disabled`, `unavailable`, `too_many_streams`)."),
}

PORTAL_SCHEMES = {"PortalKey", "PortalUser"}
STAFF_SCHEMES = {"basicAuth", "tokenAuth", "cookieAuth"}
WRITE_METHODS = {"post", "put", "patch", "delete"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def error_statuses(operation: dict[str, Any], method: str) -> set[str]:
    """The error statuses an operation can answer with."""
    security = operation.get("security")
    schemes = {name for requirement in security or [] for name in requirement}
    anonymous = not security or {} in security
    parameters = operation.get("parameters", [])
    query = {p["name"] for p in parameters if p.get("in") == "query"}
    has_body = "requestBody" in operation

    # Every call is throttled, and a NUL anywhere in a request (path, query, header) is a 400.
    statuses: set[str] = {"400", "429"}
    if not anonymous:
        statuses.add("401")
    if schemes & STAFF_SCHEMES:
        statuses.add("403")
    if any(p.get("in") == "path" for p in parameters) or "page" in query or schemes & PORTAL_SCHEMES:
        statuses.add("404")
    if method in WRITE_METHODS:
        statuses.add("409")
    if has_body:
        statuses.update({"413", "415"})
    if schemes & PORTAL_SCHEMES:
        statuses.add("503")
    return statuses


def postprocess_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool, **kwargs: Any
) -> dict[str, Any]:
    """drf-spectacular hook: the Error component, and error responses on every operation."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    responses = components.setdefault("responses", {})
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for name, description in ERROR_RESPONSES.values():
        responses[name] = {"description": description, "content": error_content}

    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            documented = operation.setdefault("responses", {})
            for status in sorted(error_statuses(operation, method)):
                if status not in documented:
                    documented[status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
            # Whatever a view documented itself: an error body is always the Error shape.
            for status, response in documented.items():
                if status.startswith(("4", "5")) and "$ref" not in response:
                    response["content"] = error_content
                    response.setdefault("description", ERROR_RESPONSES.get(status, ("", "Error"))[1])
    return result


def strip_optional_trailing_slash(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular pre-processing hook: `/api/admin/tenants`, not `/api/admin/tenants/`.

    `flowhq.api.urls.route()` matches with or without the slash (`/?$`); the
    contract spells paths without it, so the schema does too.
    """
    result = []
    for path, path_regex, method, callback in endpoints:
        if path_regex.endswith("/?$") and path.endswith("/") and path != "/":
            path = path.rstrip("/")
        result.append((path, path_regex, method, callback))
    return result
