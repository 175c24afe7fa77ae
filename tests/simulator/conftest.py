"""Fixtures for the simulator tests: a real simulator subprocess, an HTTP client for its control
API, and real headless Chromium profiles driven with pyppeteer.

Everything started here is stopped here: the simulator on teardown, each Chromium when its
`chromium()` block ends (and any process still naming its profile dir is killed and reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pyppeteer import launch

from tests.harness import SimulatorProcess
from workers.bot.browser import chromium_args

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The bot's own flags: nothing phones out, fit for a headless server.
CHROMIUM_ARGS = chromium_args()
# Small on purpose: the whole folder must stay fast.
QR_ROTATE_MS = 1500
PING_INTERVAL_MS = 200
PING_TIMEOUT_MS = 1000

# Installed before the page's own scripts run; hooks the modules at DOMContentLoaded (wa.js has run,
# its socket has not answered yet), so the recording starts with the page.
RECORDER = """
() => {
  window.recorded = { states: [], refs: [], messages: [], logouts: 0 };
  // Hook the modules the moment the page defines window.require (after it loads its storage).
  Object.defineProperty(window, 'require', {
    configurable: true,
    set(require) {
      Object.defineProperty(window, 'require', { value: require, writable: true, configurable: true });
      require('WAWebSocketModel').Socket.on('change:state', (_, state) => window.recorded.states.push(state));
      require('WAWebConnModel').Conn.on('change:ref', (_, ref) => window.recorded.refs.push(ref));
      require('WAWebCmd').Cmd.on('logout', () => { window.recorded.logouts += 1; });
      require('WAWebCollections').Msg.on('add', (msg) => window.recorded.messages.push(msg.serialize()));
    },
  });
}
"""


_PRELUDE = (
    "const r = window.require; if (!r) return false;"
    " const { Socket } = r('WAWebSocketModel'); const { Conn } = r('WAWebConnModel');"
    " const { Msg, Chat } = r('WAWebCollections');"
)


class Simulator(SimulatorProcess):
    """The simulator with this folder's fast clocks."""

    def __init__(self, log_path: Path, *, port: int = 0, state_file: Path | None = None) -> None:
        super().__init__(log_path, port=port, state_file=state_file, qr_rotate_ms=QR_ROTATE_MS,
                         ping_interval_ms=PING_INTERVAL_MS, ping_timeout_ms=PING_TIMEOUT_MS)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    sim = Simulator(tmp_path_factory.mktemp("sim") / "simulator.log").start()
    try:
        yield sim
    finally:
        sim.stop()
    assert "Traceback" not in sim.log_path.read_text(), sim.log_path.read_text()


class SimClient:
    """The control API, as the bot's tests would call it."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.session = session

    async def request(
        self, method: str, path: str, body: Any = None, *, raw: str | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.session.request(method, self.base + path, data=data) as response:
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.request(method, path, body)
        assert status < 300, (method, path, status, data)
        return data

    async def device(self, device_id: str) -> dict[str, Any]:
        found = [d for d in await self.ok("GET", "/_sim/devices") if d["device"] == device_id]
        assert found, f"device {device_id} not listed"
        return found[0]


@contextlib.asynccontextmanager
async def sim_client(base_url: str) -> AsyncIterator[SimClient]:
    async with aiohttp.ClientSession() as session:
        yield SimClient(base_url, session)


def processes_using(profile: Path) -> list[int]:
    result = subprocess.run(["pgrep", "-f", str(profile)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in result.stdout.split()]


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Any]:
    """A headless Chromium on `profile`; closed gracefully,
    and anything left running on that profile is killed and makes the test fail."""
    browser = None
    try:
        browser = await launch(
            executablePath=CHROMIUM,
            headless=True,
            userDataDir=str(profile),
            handleSIGINT=False,
            handleSIGTERM=False,
            handleSIGHUP=False,
            autoClose=False,
            args=CHROMIUM_ARGS,
        )
        yield browser
    finally:
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), 10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(browser.process.wait, 10)
        leftovers = await _wait_until_gone(profile)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"Chromium processes left on {profile}: {leftovers}"


async def _wait_until_gone(profile: Path, timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    while (pids := processes_using(profile)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return pids


async def open_whatsapp(browser: Any, url: str) -> Any:
    """The bot's first step: open WHATSAPP_WEB_URL (here with the test recorder installed)."""
    page = (await browser.pages())[0]
    page.errors = []
    page.on("pageerror", page.errors.append)
    await page.evaluateOnNewDocument(RECORDER)
    await page.goto(url)
    return page


async def wait_for(page: Any, expression: str, timeout_ms: int = 8000) -> Any:
    """Wait until a JS expression over the page's modules is truthy; returns its value.

    Polls on a timer: the default (requestAnimationFrame) never fires in a background tab."""
    handle = await page.waitForFunction(
        f"() => {{ {_PRELUDE} return ({expression}); }}", {"timeout": timeout_ms, "polling": 50}
    )
    return await handle.jsonValue()


async def js(page: Any, expression: str) -> Any:
    return await page.evaluate(f"() => {{ {_PRELUDE} return ({expression}); }}")


async def stored(page: Any, key: str) -> Any:
    """A value of the page's own storage (IndexedDB `wawc`/`user`), or None."""
    return await page.evaluate(
        """(key) => new Promise((resolve, reject) => {
             const open = indexedDB.open('wawc');
             open.onerror = () => reject(open.error);
             open.onsuccess = () => {
               const get = open.result.transaction('user').objectStore('user').get(key);
               get.onsuccess = () => resolve(get.result === undefined ? null : get.result);
               get.onerror = () => reject(get.error);
             };
           })""",
        key,
    )


async def state(page: Any) -> str:
    return await js(page, "Socket.state")


async def qr_payload(page: Any) -> str:
    """The payload exactly as a driver builds it from the modules."""
    return await page.evaluate(
        """async () => {
      const { Conn } = window.require('WAWebConnModel');
      const utils = window.require('WAWebRegistrationUtils');
      return [Conn.ref, await utils.getNoiseKeyB64(), await utils.getIdentityKeyB64(), await utils.getADVSecretKey()].join(',');
    }"""
    )


async def link(page: Any, client: SimClient, phone: str, name: str = "") -> str:
    """Scan the page's QR as `phone`; returns the device id once the page is CONNECTED."""
    await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
    result = await client.ok(
        "POST", "/_sim/scan", {"qr": await qr_payload(page), "phone": phone, "name": name}
    )
    await wait_for(page, "Socket.state === 'CONNECTED'")
    return result["device"]
