"""A TCP proxy in front of PostgreSQL that a test can cut: a database outage for the
processes that connect through it (agents, workers, beat), while the test itself keeps
its own direct connection to check what happened.

`outage()` drops every connection through the proxy (as a server restart does: the
processes see their connection end mid-session) and refuses new ones until it is lifted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from django.db import connection

from tests.harness import database_url_for_children


class PostgresProxy:
    def __init__(self) -> None:
        db = connection.settings_dict
        self.target = (db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._closed = False
        self.refused = 0
        threading.Thread(target=self._accept, name="pg-proxy", daemon=True).start()

    def url(self) -> str:
        """DATABASE_URL for child processes: the test database, through this proxy."""
        return database_url_for_children(host="127.0.0.1", port=self.port)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._down:
                    self.refused += 1
                    client.close()
                    continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        """The database goes away: every connection ends, new ones are refused."""
        with self._lock:
            self._down = True
            sockets = list(self._open)
        self._drop(*sockets)

    def restore(self) -> None:
        with self._lock:
            self._down = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
