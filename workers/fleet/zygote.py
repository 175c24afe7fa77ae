"""The zygote: a warm parent that forks this host's tenant workers.

An exec'ed tenant worker imports Django, Celery, the app and pyppeteer afresh:
about 1 CPU-second and 75 MB of private memory each. The zygote does it once
per host — imports everything a tenant worker needs, opens no connection,
freezes its heap (`gc.freeze()`, so the collector does not write to the pages
the children share) — and then forks one child per request. A child shares
those pages copy-on-write and only pays for what it touches.

It is started by the fleet agent (workers/fleet/spawner.py) and talks to it
over one socket (line-delimited JSON):

    zygote → agent  {"ready": true, "pid": <zygote pid>}
    agent → zygote  {"tenant_id": 7, "epoch": 3, "host": "h1"}
    zygote → agent  {"pid": <worker pid>}   or   {"error": "..."}

Each worker is forked twice (the middle process exits at once), so it is
re-parented to the agent — a child subreaper — which then waits for it,
watches it through a pidfd and kills its process group exactly as it does an
exec'ed worker's. The zygote forks only while it has a single thread (a fork
copies only the calling thread, and a lock another thread held would stay
locked in the child forever). It exits when the agent's end of the socket
closes, so a dead agent leaves no zygote behind.

    python -m workers.fleet.zygote --fd <socket fd> --host <host>
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, cast

from setproctitle import setproctitle

log = logging.getLogger("workers.fleet.zygote")

# What a tenant worker imports on its way to running, loaded here once.
WARM_MODULES = (
    "billiard.pool", "celery.app.amqp", "celery.app.control", "celery.app.events", "celery.app.log",
    "celery.app.routes", "celery.apps.worker", "celery.bin.celery", "celery.bin.worker",
    "celery.concurrency.thread", "celery.contrib.django.task", "celery.events", "celery.worker.autoscale",
    "celery.worker.components", "celery.worker.consumer", "celery.worker.consumer.delayed_delivery",
    "celery.worker.control", "celery.worker.pidbox", "celery.worker.strategy", "kombu.matcher", "kombu.pidbox",
    "kombu.transport.redis", "webhooks.step", "workers.bot.runtime", "workers.fleet.step",
    "workers.runtime.placeholder", "workers.runtime.step",
)


def warm() -> None:
    """Import what a tenant worker needs; open nothing; freeze the heap."""
    import importlib

    import django

    django.setup()
    from django.db import connections

    from flowhq.celery import app

    app.loader.import_default_modules()
    app.finalize(auto=True)
    for name in WARM_MODULES:
        importlib.import_module(name)
    connections.close_all()
    gc.collect()
    gc.freeze()


def fork_worker(tenant_id: int, epoch: int, host: str, channel: socket.socket) -> int:
    """Fork a tenant worker (through a middle process that exits at once); its pid."""
    read_fd, write_fd = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_fd)
        try:
            worker = os.fork()
            if worker == 0:
                os.close(write_fd)
                _become_worker(tenant_id, epoch, host, channel)
            os.write(write_fd, str(worker).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        os.waitpid(middle, 0)
        with os.fdopen(read_fd, "rb") as pipe:
            return int(pipe.read() or b"0")
    except Exception:
        os.close(read_fd)
        raise


def _become_worker(tenant_id: int, epoch: int, host: str, channel: socket.socket) -> None:
    """In the forked child: become tenant `tenant_id`'s Celery worker, then exit. Never returns."""
    code = 1
    try:
        os.close(channel.detach())  # the zygote's end: the agent must see it close when the zygote dies
        os.setsid()  # the leader of its own session and process group, as an exec'ed worker is
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        # What a tenant worker reads from its environment: Chromium inherits these tags too,
        # which is how the agent finds a dead worker's leftover browser (workers/fleet/processes.py).
        os.environ.update(FLOWHQ_ROLE="tenant", TENANT_ID=str(tenant_id), FLOWHQ_EPOCH=str(epoch),
                          FLOWHQ_HOST=host)
        # `ps` shows which tenant this is (Celery sets its own title with the node name later;
        # SPT_NOENV keeps either within the zygote's command line, flowhq/celery.py).
        setproctitle(f"flowhq worker tenant-{tenant_id}@{host} epoch {epoch} (forked)")
        from flowhq.celery import app, quiet_tenant_warnings, use_django_logging
        from workers.fleet.processes import tenant_worker_args

        quiet_tenant_warnings()
        use_django_logging()  # log lines carry this tenant from the first one
        sys.argv = ["celery", "-A", "flowhq", *tenant_worker_args(tenant_id, host)]
        # celery-types says start() never returns; Celery returns the worker's exit code.
        start = cast(Callable[[list[str]], int | None], app.start)
        code = start(sys.argv[3:]) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(channel: socket.socket) -> None:
    """Answer spawn requests until the agent closes its end."""
    _send(channel, {"ready": True, "pid": os.getpid()})
    for line in channel.makefile("rb"):
        try:
            request = json.loads(line)
            if threading.active_count() != 1:
                raise RuntimeError(f"the zygote has {threading.active_count()} threads; forking needs one")
            pid = fork_worker(int(request["tenant_id"]), int(request["epoch"]), str(request["host"]), channel)
            reply: dict[str, Any] = {"pid": pid} if pid > 0 else {"error": "the fork failed"}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        _send(channel, reply)


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="the socket to the fleet agent")
    parser.add_argument("--host", required=True, help="the host whose workers it forks")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the agent's to handle
    channel = socket.socket(fileno=args.fd)
    warm()  # first: importing flowhq.celery sets SPT_NOENV, which setproctitle reads once
    setproctitle(f"flowhq zygote {args.host}")
    serve(channel)


if __name__ == "__main__":
    main()
