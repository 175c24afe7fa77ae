"""Fixtures and helpers for the bot against the simulator: real agents, workers, Chromium and
the simulator process (a pytest plugin, loaded by tests/conftest.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import requests
from PIL import Image
from pyzbar.pyzbar import decode

from tenants.models import WhatsAppSession
from tests.harness import Fleet, SimulatorProcess, ours, wait_for
from tests.waits import wait_host, worker  # noqa: F401  (worker: the bot tests import it from here)
from workers import lifecycle

# Fast clocks: QR codes rotate every 2 s; a dead socket is noticed within ~1.5 s.
SIM_TIMINGS = {"qr_rotate_ms": 2000, "ping_interval_ms": 300, "ping_timeout_ms": 1500}
BOT_ENV = {
    "BOT_RUNTIME": "whatsapp",
    "RECONNECT_BASE_DELAY_MS": "300",
    "RECONNECT_MAX_DELAY_MS": "2000",
    "RECONNECT_MAX_ATTEMPTS": "10",
    "QR_MAX_UNSCANNED": "20",
}


@dataclass
class Sim:
    process: SimulatorProcess

    @property
    def url(self) -> str:
        return self.process.url

    def call(self, method: str, path: str, body: dict | None = None, expect: int | None = None) -> object:
        response = requests.request(method, self.url.rstrip("/") + path, json=body, timeout=10)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()

    def scan(self, payload: str, phone: str) -> None:
        self.call("POST", "/_sim/scan", {"qr": payload, "phone": phone}, expect=200)

    def message(self, phone: str, message_id: str, sender: str, body: str, name: str = "") -> None:
        self.call("POST", f"/_sim/phones/{phone}/messages",
                  {"id": message_id, "from": sender, "body": body, "name": name}, expect=202)

    def send(self, phone: str, kind: str, **fields: object) -> None:
        """Something of `kind` reaches the phone's account (see simulator/README.md)."""
        self.call("POST", f"/_sim/phones/{phone}/messages", {"kind": kind, **fields}, expect=202)

    def replies(self, phone: str, body: str) -> list[dict]:
        """Outbox entries with exactly this text."""
        return [m for m in self.outbox(phone) if m["body"] == body]

    def outbox(self, phone: str) -> list[dict]:
        response = requests.get(f"{self.url.rstrip('/')}/_sim/phones/{phone}/outbox", timeout=10)
        return response.json() if response.status_code == 200 else []

    def devices(self) -> list[dict]:
        return self.call("GET", "/_sim/devices")  # type: ignore[return-value]


@pytest.fixture
def sim(tmp_path) -> Iterator[Sim]:
    process = SimulatorProcess(tmp_path / "simulator.log", **SIM_TIMINGS).start()
    try:
        yield Sim(process)
    finally:
        process.stop()


@pytest.fixture
def bot_fleet(fleet: Fleet, sim: Sim, tmp_path) -> Fleet:
    return point_at(fleet, sim.url, tmp_path)


def point_at(fleet: Fleet, url: str, tmp_path, **env: str) -> Fleet:
    """The fleet's bots run for real (BOT_ENV) against the simulator at `url`."""
    fleet.env.update(BOT_ENV, WHATSAPP_WEB_URL=url, SESSIONS_PATH=str(tmp_path / "sessions"), **env)
    return fleet


def bot_log(fleet: Fleet, tenant_id: int, msg: str) -> list[str]:
    """The tenant's bot's log lines with this message (its agent's log holds the worker's output)."""
    return [line for proc in fleet.procs for line in proc.output().splitlines()
            if f" tenant={tenant_id} " in line and f'msg="{msg}"' in line]


def session(tenant_id: int) -> WhatsAppSession:
    return WhatsAppSession.objects.get(tenant_id=tenant_id)


def wait_session(tenant_id: int, state: str, timeout: float = 60) -> WhatsAppSession:
    return wait_for(lambda: session(tenant_id).state == state and session(tenant_id), timeout,
                    what=f"session of {tenant_id} {state}")


def decode_qr(data_uri: str) -> str:
    assert data_uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    # zbar may report one code twice, or a false 1-D barcode in its modules: one QR payload counts.
    (payload,) = {symbol.data.decode() for symbol in decode(image) if symbol.type == "QRCODE"}
    return payload


def start_agent(fleet: Fleet, **env: str) -> str:
    host = fleet.new_host()
    fleet.agent(host, **env)
    wait_host(host)
    return host


def link(tenant_id: int, sim: Sim, phone: str) -> WhatsAppSession:
    """Start the tenant's worker, read its QR as a phone would, and scan it."""
    lifecycle.worker_start(tenant_id=tenant_id)
    qr = wait_session(tenant_id, "QR_READY").qr
    sim.scan(decode_qr(qr), phone)
    return wait_session(tenant_id, "CONNECTED")


def chromium_of(tenant_id: int) -> list[int]:
    """Live Chromium processes started by the tenant's worker (they carry its process tags)."""
    found = []
    for proc in ours(tenant_id):
        try:
            if "chrom" in proc.name():
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found
