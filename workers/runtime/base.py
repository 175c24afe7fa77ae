"""The contract between the runner (lease, heartbeat, shutdown) and a runtime (the bot)."""

from __future__ import annotations

import asyncio
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import close_old_connections, connections

from workers.lease import LocalLease

T = TypeVar("T")
CHECK_AFTER_IDLE_S = 1.0


@dataclass(frozen=True)
class RuntimeContext:
    tenant_id: int
    epoch: int
    host: str
    node: str
    pid: int


@dataclass(frozen=True)
class Health:
    """What a heartbeat reports. `ok=False` withholds the heartbeat, so the
    lease lapses and the sweep recovers the worker."""

    ok: bool
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


class Db:
    """Runs ORM calls off the event loop, on one thread with one connection.

    Django's ORM is synchronous; one dedicated thread also serialises a
    runtime's writes, so they reach the database in the order they were made.

    The connection is checked (Django's `close_old_connections`, which with
    CONN_HEALTH_CHECKS costs a round trip) after the thread was idle or a call
    failed, not before every call: a burst of message writes reuses a
    connection that has just worked.
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")
        self._worked_at = float("-inf")  # touched only by the pool's one thread

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if time.monotonic() - self._worked_at > CHECK_AFTER_IDLE_S:
            close_old_connections()
        self._worked_at = float("-inf")
        result = fn(*args, **kwargs)
        self._worked_at = time.monotonic()
        return result

    def close(self) -> None:
        self._pool.submit(connections.close_all).result(timeout=10)
        self._pool.shutdown(wait=True)


class Runtime(ABC):
    """One per tenant worker process: started once the lease is held, stopped on shutdown."""

    def __init__(self, ctx: RuntimeContext, *, lease: LocalLease, db: Db, terminate: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.lease = lease
        self.db = db
        # Ends the whole worker process (warm shutdown), e.g. on a fatal error.
        self.terminate = terminate

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def health(self) -> Health: ...

    async def on_heartbeat(self, health: Health) -> None:
        """Called after each heartbeat the database accepted."""
        return None
