"""How the fleet agent starts a tenant worker: forked by the host's zygote, or exec'ed.

The zygote (workers/fleet/zygote.py) is the agent's child, started when the
agent starts; the agent waits for it to be warm before its first spawn, so a
host's first fifty workers are all forked. A zygote that dies or does not
answer is started again in the background, and until it is warm again workers
are exec'ed as they were before it existed: a spawn never waits for it.
`FLEET_FORK_WORKERS=false` exec's every worker.
"""

from __future__ import annotations

import json
import logging
import selectors
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings

from workers.fleet import processes, registry
from workers.fleet.backoff import restart_delay_ms

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
REPLY_TIMEOUT_S = 5.0
ZYGOTE_RESTART_MAX_MS = 60_000


class ZygoteUnavailable(Exception):
    """The zygote is not running, not warm yet, or did not answer."""


class Zygote:
    """The agent's end of one zygote process."""

    def __init__(self, host: str) -> None:
        ours, theirs = socket.socketpair()
        self.host = host
        self.channel = ours
        self.popen = subprocess.Popen(
            # --host also makes room in the command line for each worker's title (workers/fleet/zygote.py).
            [sys.executable, "-m", "workers.fleet.zygote", "--fd", str(theirs.fileno()), "--host", host],
            env=processes.worker_environment(FLOWHQ_ROLE="zygote", FLOWHQ_HOST=host), cwd=settings.BASE_DIR,
            stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self.channel.setblocking(False)
        self._buffer = b""
        self.ready = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """True once the zygote said it is warm (waiting up to `timeout`)."""
        if not self.ready:
            message = self._read(timeout)
            self.ready = bool(message and message.get("ready"))
            if self.ready:
                log.info("zygote ready", extra={"pid": self.popen.pid})
        return self.ready

    def fork(self, tenant_id: int, epoch: int) -> int:
        if not self.alive() or not self.poll_ready():
            raise ZygoteUnavailable("the zygote is not running" if not self.alive() else "the zygote is not warm yet")
        request = {"tenant_id": tenant_id, "epoch": epoch, "host": self.host}
        try:
            self.channel.setblocking(True)
            self.channel.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise ZygoteUnavailable(f"could not reach the zygote: {exc}") from exc
        finally:
            self.channel.setblocking(False)
        reply = self._read(REPLY_TIMEOUT_S)
        if reply is None:
            self.close()  # a zygote that does not answer is not trusted again
            raise ZygoteUnavailable("the zygote did not answer")
        if "pid" not in reply:
            raise ZygoteUnavailable(str(reply.get("error", "no pid in the zygote's answer")))
        return int(reply["pid"])

    def _read(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.channel, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    return None
                try:
                    chunk = self.channel.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    return None
                if not chunk:
                    return None  # the zygote is gone
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def close(self) -> None:
        """Stop the zygote (closing its socket is enough; a kill makes sure)."""
        self.channel.close()
        if self.alive():
            self.popen.kill()
        try:
            self.popen.wait(5)
        except (subprocess.TimeoutExpired, ChildProcessError):
            pass


class Spawner:
    """Starts this host's tenant workers; the agent calls it from its one loop thread."""

    def __init__(self, host: str, fork: bool) -> None:
        self.host = host
        self.fork_enabled = fork
        self.zygote: Zygote | None = None
        self._failures = 0  # zygotes in a row that died before they were warm
        self._restart_at: float | None = None

    def start(self) -> None:
        """Start the zygote and wait (bounded) until it is warm."""
        if not self.fork_enabled:
            return
        self.zygote = Zygote(self.host)
        if not self.zygote.poll_ready(READY_TIMEOUT_S):
            log.warning("the zygote did not get ready; workers are exec'ed until it does")

    def spawn(self, tenant_id: int, epoch: int) -> tuple[int, str]:
        """Start tenant `tenant_id`'s worker; (pid, "forked" or "exec'ed")."""
        if self.zygote is not None:
            try:
                pid = self.zygote.fork(tenant_id, epoch)
                registry.record(self.host, tenant_id, pid, epoch)
                return pid, "forked"
            except ZygoteUnavailable as exc:
                log.warning("exec'ing the worker: the zygote cannot fork it", extra={"tenant": tenant_id,
                                                                                     "why": str(exc)})
                self.tend()
        return processes.exec_tenant_worker(tenant_id, epoch, self.host), "exec'ed"

    def tend(self) -> None:
        """On the agent's timer: start a dead zygote again (backing off while each one dies
        before it is warm: a zygote that cannot import must not be restarted every tick),
        and notice when a new one is warm."""
        zygote = self.zygote
        if zygote is None:
            return
        if zygote.alive() and zygote.channel.fileno() >= 0:
            if zygote.poll_ready():
                self._failures = 0
            return
        if self._restart_at is None:
            self._failures += 0 if zygote.ready else 1
            delay_ms = restart_delay_ms(self._failures, base_ms=1000, max_ms=ZYGOTE_RESTART_MAX_MS)
            self._restart_at = time.monotonic() + delay_ms / 1000
            log.warning("the zygote died; workers are exec'ed until a new one is warm",
                        extra={"exit_code": zygote.popen.poll(), "restart_in_s": delay_ms / 1000})
        if time.monotonic() >= self._restart_at:
            self._restart_at = None
            self._restart_zygote()

    def forget(self, tenant_id: int, pid: int) -> None:
        registry.forget(self.host, tenant_id, pid)

    def pids(self) -> set[int]:
        """The agent's own children besides the workers (its reaping leaves them alone)."""
        return {self.zygote.popen.pid} if self.zygote is not None else set()

    def _restart_zygote(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
        log.info("starting the zygote again", extra={"attempt": self._failures + 1})
        self.zygote = Zygote(self.host)

    def stop(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


def spawner_for(host: str) -> Spawner:
    return Spawner(host, fork=settings.FLEET_FORK_WORKERS)
