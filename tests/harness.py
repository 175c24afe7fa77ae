"""Real processes for integration tests: fleet agents, Celery beat, HTTP servers.

Every process started here runs against the test database and the test Redis
database, with its own logs in the test's tmp folder, and is stopped — with
everything it started — when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# Fast clocks for tests: heartbeats every 0.5 s, stale after 2.5 s.
FAST = {
    "HEARTBEAT_INTERVAL_MS": "500",
    "STALE_THRESHOLD_MS": "2500",
    "WORKER_STOP_GRACE_MS": "5000",
    "WORKER_STARTUP_GRACE_MS": "30000",
    "WORKER_RESTART_BASE_DELAY_MS": "300",
    "WORKER_RESTART_MAX_DELAY_MS": "3000",
    "WORKER_STABLE_AFTER_MS": "20000",
    "BOT_RUNTIME": "placeholder",
    # Off: agents of concurrent runs would fight over one port (a test that wants it sets one).
    "FLEET_METRICS_PORT": "0",
    "LOG_LEVEL": "INFO",
}


def wait_for(check: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the thing is not there yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line names `folder` (a browser on its profile)."""
    found = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate (cert, key) for web.whatsapp.com and 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    assert openssl, "this test needs the openssl command to make its TLS certificate"
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=web.whatsapp.com",
         "-addext", "subjectAltName=DNS:web.whatsapp.com,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_children(*, host: str = "", port: int = 0) -> str:
    """The database this test run uses, for child processes (at `host`:`port`, e.g. a proxy)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = host or db.get("HOST") or "127.0.0.1", port or db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        **FAST,
        "DATABASE_URL": database_url_for_children(),
        "REDIS_URL": settings.REDIS_URL,
        "FLOWHQ_DOTENV": "0",
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }


def ours(tenant_id: int | None = None, *, leaders_only: bool = False) -> list[psutil.Process]:
    """Live processes started for this test run (their DATABASE_URL is the test database, or —
    Chromium, which gets no DATABASE_URL — their host is one of this run's), optionally only
    those of one tenant (workers and the Chromium they started) or only the workers themselves
    (process-group leaders). Other runs on the machine do not count."""
    from workers.fleet import registry
    from workers.models import FleetHost

    # By the database's name: a test may route its children through a proxy (tests/dbproxy.py).
    database, found = "/" + connection.settings_dict["NAME"], []
    hosts = set(FleetHost.objects.values_list("name", flat=True))
    # A forked worker's environment is its zygote's; the agent wrote down which tenant it is.
    forked = {pid: (tenant, host) for host in hosts for pid, tenant, _, _ in registry.recorded(host)}
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            env = proc.environ()
            leader = os.getpgid(proc.pid) == proc.pid
        except (psutil.Error, ProcessLookupError, OSError):
            continue
        if proc.pid in forked:
            env = {**env, "FLOWHQ_ROLE": "tenant", "TENANT_ID": str(forked[proc.pid][0]),
                   "FLOWHQ_HOST": forked[proc.pid][1]}
        by_database = env.get("DATABASE_URL", "").endswith(database)
        by_host = "DATABASE_URL" not in env and env.get("FLOWHQ_HOST") in hosts
        if env.get("FLOWHQ_ROLE") != "tenant" or not (by_database or by_host):
            continue
        if tenant_id is not None and env.get("TENANT_ID") != str(tenant_id):
            continue
        if leaders_only and not leader:
            continue
        found.append(proc)
    return found


def tenant_processes(tenant_id: int | None = None) -> list[psutil.Process]:
    """Live tenant worker processes of this test run."""
    return ours(tenant_id, leaders_only=True)


def processes_of_hosts(hosts: set[str]) -> list[psutil.Process]:
    """Every live process tagged with one of `hosts` (workers and what they started)."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get("FLOWHQ_HOST") in hosts:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


@contextlib.contextmanager
def gunicorn(log_path: Path, *, workers: int = 1, threads: int = 2, access_log: bool = False,
             **env: str) -> Iterator[str]:
    """Real gunicorn serving flowhq.wsgi (as the Procfile runs it) on this test run's database;
    yields its base URL once /healthz answers, and stops it at the end."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "flowhq.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), *(["--access-logfile", "-"] if access_log else [])]
    with log_path.open("ab") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=child_env(**env), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/healthz", timeout=2).ok, 30, what="gunicorn")
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Fleet:
    """Agents (one per host name) and, when asked, Celery beat."""

    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def new_host(self) -> str:
        host = f"h{uuid.uuid4().hex[:6]}"
        self.hosts.add(host)
        return host

    def _start(self, name: str, argv: list[str], **env: str) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=child_env(**{**self.env, **env}), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def agent(self, host: str | None = None, capacity: int = 20, **env: str) -> Proc:
        host = host or self.new_host()
        self.hosts.add(host)
        return self._start(
            f"agent-{host}", [sys.executable, "manage.py", "fleet", "--host", host, "--capacity", str(capacity)],
            FLOWHQ_HOST=host, **env,
        )

    def beat(self) -> Proc:
        return self._start(
            "beat", [sys.executable, "-m", "celery", "-A", "flowhq", "beat", "-S", "django",
                     "--loglevel", "INFO", "--schedule", str(self.tmp / "beat-schedule")],
        )

    def webhooks_worker(self, name: str = "webhooks", **env: str) -> Proc:
        """The Procfile's `webhooks` process: a Celery worker on the `webhooks` queue."""
        return self._start(
            name, [sys.executable, "-m", "celery", "-A", "flowhq", "worker", "-Q", "webhooks",
                   "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--pool", "threads", "--concurrency", "4",
                   "--loglevel", "INFO", "--without-mingle", "--without-gossip"], **env,
        )

    def flower(self, port: int) -> Proc:
        return self._start(
            "flower", [sys.executable, "-m", "celery", "-A", "flowhq", "flower", "--address=127.0.0.1",
                       f"--port={port}"],
        )

    def stop(self, proc: Proc, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        if proc.alive():
            proc.popen.send_signal(sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(10)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        # Whatever survived (a worker of a SIGKILLed agent, its Chromium) goes too.
        for proc in processes_of_hosts(self.hosts):
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(processes_of_hosts(self.hosts), timeout=10)
        for host in self.hosts:  # what the agents wrote down of their forked workers
            shutil.rmtree(Path(settings.FLEET_RUN_DIR) / host, ignore_errors=True)


class SimulatorProcess:
    """`python -m simulator` as a subprocess; output goes to a file so it can never block on a pipe."""

    def __init__(self, log_path: Path, *, port: int = 0, state_file: Path | None = None,
                 qr_rotate_ms: int = 20000, ping_interval_ms: int = 2000, ping_timeout_ms: int = 6000,
                 sync_delay_ms: int = 200, extra_args: tuple[str, ...] = ()) -> None:
        self.log_path = log_path
        self.port = port
        self.state_file = state_file
        self.timings = {"--qr-rotate-ms": qr_rotate_ms, "--ping-interval-ms": ping_interval_ms,
                        "--ping-timeout-ms": ping_timeout_ms, "--sync-delay-ms": sync_delay_ms}
        self.extra_args = extra_args
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SimulatorProcess:
        args = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(self.port)]
        for option, value in self.timings.items():
            args += [option, str(value)]
        args += self.extra_args
        if self.state_file is not None:
            args += ["--state-file", str(self.state_file)]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            output = self.log_path.read_bytes()[offset:].decode(errors="replace")
            found = re.search(r"simulator listening on (http://127\.0\.0\.1:\d+/)", output)
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"simulator did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
