"""Every operation in the OpenAPI schema says what it does in words of its own."""

from __future__ import annotations

from collections import defaultdict

from drf_spectacular.generators import SchemaGenerator

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def operations() -> dict[str, dict]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {f"{method.upper()} {path}": operation
            for path, item in schema["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS}


def test_each_operation_says_what_it_does():
    lacking = [name for name, op in operations().items() if not (op.get("description") or op.get("summary"))]
    assert lacking == []


def test_no_two_operations_share_a_description_or_a_summary():
    for field in ("description", "summary"):
        by_text: dict[str, list[str]] = defaultdict(list)
        for name, op in operations().items():
            if op.get(field):
                by_text[op[field]].append(name)
        shared = {text: names for text, names in by_text.items() if len(names) > 1}
        assert shared == {}, f"operations sharing a {field}"


def test_start_stop_restart_and_force_restart_say_what_each_does():
    ops = operations()
    worker = "/api/admin/tenants/{tenant_id}/worker"
    texts = {verb: ops[f"POST {worker}/{verb}"]["description"] for verb in ("start", "stop", "restart",
                                                                            "force-restart")}
    assert "Kill the worker at once" in texts["force-restart"]
    assert all("Kill" not in texts[verb] for verb in ("start", "stop", "restart"))
    assert "already running" in texts["start"]
    assert "already stopped" in texts["stop"]
