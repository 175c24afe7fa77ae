"""A real HTTP receiver on loopback for webhook tests: records every request, answers by a script."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

HANG = "hang"  # an answer that never comes (until the test ends)


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    wall: float = field(default_factory=time.time)  # `at` is monotonic; this compares with database times

    def json(self) -> Any:
        return json.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The body, verified by the standardwebhooks package (raises if the signature is wrong)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Answers the n-th request with `script[n]` (a status code or HANG), then `then`."""

    script: list[int | str] = field(default_factory=list)
    then: int | str = 200
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def answer(self) -> int | str:
        with self.lock:
            n = len(self.requests) - 1
        return self.script[n] if n < len(self.script) else self.then

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(Request(time.monotonic(), self.path,
                                                     {k.lower(): v for k, v in self.headers.items()}, body))
                answer = receiver.answer()
                if answer == HANG:
                    receiver.release.wait(60)
                    return
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(int(answer))
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def of_type(self, event_type: str) -> list[Request]:
        return [r for r in list(self.requests) if r.json().get("type") == event_type]

