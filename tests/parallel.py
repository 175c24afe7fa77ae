"""A pytest plugin (loaded with `-p tests.parallel`, before pytest-django reads the settings): under
pytest-xdist, each worker gets a Redis database of its own, as pytest-django gives it a database
of its own (test_<name>_gw<N>). Tenant queues are named by tenant id, and ids repeat from one
worker's database to the next: on one Redis database, one worker's bot would take another's tasks.

Worker gw<N> uses database (REDIS_URL's number − N); the children it starts inherit it."""

from __future__ import annotations

import os
import re

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"  # as in pyproject.toml's [tool.pytest] env


def _worker_redis_url(url: str, worker: str) -> str:
    match = re.fullmatch(r"(redis://[^/]+)/(\d+)", url)
    if match is None:
        raise SystemExit(f"tests under pytest-xdist need REDIS_URL as redis://host:port/<db>, not {url!r}")
    index = int(worker.removeprefix("gw"))
    db = int(match[2]) - index
    if db < 1:
        raise SystemExit(f"REDIS_URL's database {match[2]} leaves no database of its own for xdist worker {worker}")
    return f"{match[1]}/{db}"


if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["REDIS_URL"] = _worker_redis_url(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), worker)
