"""Fixtures for the simulator tests: a real simulator subprocess, an HTTP client for its control
API, and real headless Chromium profiles driven with pyppeteer.

Everything started here is stopped here: the simulator on teardown, each Chromium when its
`chromium()` block ends (and any process still naming its profile dir is killed and reported).

The helpers read the page the way whatsapp-web.js 1.34.7 does (simulator/README.md): the QR payload
is built from the same modules, and a send goes through `addAndSendMsgToChat` with a `MsgKey` the
sender built, as `WWebJS.sendMessage` does.
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
from pyppeteer.errors import ElementHandleError, NetworkError

from tests.harness import SimulatorProcess, processes_naming
from workers.bot.browser import chromium_args

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The bot's own flags: nothing phones out, fit for a headless server.
CHROMIUM_ARGS = chromium_args()
# Small on purpose: the whole folder must stay fast.
QR_ROTATE_MS = 1500
PING_INTERVAL_MS = 200
PING_TIMEOUT_MS = 1000
SYNC_DELAY_MS = 200

# Installed before the page's own scripts run; hooks the modules the moment the page defines
# window.require (after it loaded its storage, before its socket opens), so the recording starts with
# the page. `timeline` keeps the order across kinds of event. The logout events are also kept in
# sessionStorage: the page reloads itself right after one, and the tab's list survives that.
RECORDER = """
() => {
  const LOGOUTS = 'recorded-logouts';
  const recorded = window.recorded = {
    states: [], refs: [], messages: [], synced: 0, timeline: [],
    logouts: JSON.parse(sessionStorage.getItem(LOGOUTS) || '[]'),
  };
  Object.defineProperty(window, 'require', {
    configurable: true,
    set(require) {
      Object.defineProperty(window, 'require', { value: require, writable: true, configurable: true });
      const { Socket } = require('WAWebSocketModel');
      Socket.on('change:state', (_, state) => { recorded.states.push(state); recorded.timeline.push(`state:${state}`); });
      Socket.on('change:hasSynced', (_, synced) => {
        if (synced) recorded.synced += 1;
        recorded.timeline.push(`hasSynced:${synced}`);
      });
      require('WAWebConnModel').Conn.on('change:ref', (_, ref) => recorded.refs.push(ref));
      const { Cmd } = require('WAWebCmd');
      for (const event of ['logout', 'logout_from_bridge']) {
        Cmd.on(event, () => {
          recorded.logouts.push(event);
          recorded.timeline.push(event);
          sessionStorage.setItem(LOGOUTS, JSON.stringify(recorded.logouts));
        });
      }
      require('WAWebCollections').Msg.on('add', (msg) => {
        recorded.messages.push(msg.serialize());
        recorded.timeline.push(`add:${msg.id.id}`);
      });
    },
  });
}
"""


_PRELUDE = (
    "const r = window.require; if (!r) return false;"
    " const { Socket } = r('WAWebSocketModel'); const { Conn } = r('WAWebConnModel');"
    " const { Msg, Chat } = r('WAWebCollections'); const Me = r('WAWebUserPrefsMeUser');"
)


class Simulator(SimulatorProcess):
    """The simulator with this folder's fast clocks (any of them can be overridden)."""

    def __init__(self, log_path: Path, *, port: int = 0, state_file: Path | None = None,
                 qr_rotate_ms: int = QR_ROTATE_MS, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(log_path, port=port, state_file=state_file, qr_rotate_ms=qr_rotate_ms,
                         ping_interval_ms=PING_INTERVAL_MS, ping_timeout_ms=PING_TIMEOUT_MS,
                         sync_delay_ms=SYNC_DELAY_MS, extra_args=extra_args)


@contextlib.contextmanager
def running(simulator: Simulator) -> Iterator[Simulator]:
    """Start a simulator of the test's own; stopped, and its log checked for tracebacks, at the end."""
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()
    assert "Traceback" not in simulator.log_path.read_text(), simulator.log_path.read_text()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    with running(Simulator(tmp_path_factory.mktemp("sim") / "simulator.log")) as sim:
        yield sim


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

    async def post(self, phone: str, kind: str = "dm", **fields: Any) -> dict[str, Any]:
        """Something reaches `phone`'s account (POST /_sim/phones/<phone>/messages)."""
        status, data = await self.request("POST", f"/_sim/phones/{phone}/messages", {"kind": kind, **fields})
        assert status == 202, (kind, fields, status, data)
        return data

    async def device(self, device_id: str) -> dict[str, Any]:
        found = [d for d in await self.ok("GET", "/_sim/devices") if d["device"] == device_id]
        assert found, f"device {device_id} not listed"
        return found[0]

    async def phone(self, number: str) -> dict[str, Any]:
        found = [p for p in await self.ok("GET", "/_sim/phones") if p["phone"] == number]
        assert found, f"phone {number} not listed"
        return found[0]

    async def wait_until_delivered(self, number: str, timeout: float = 5) -> None:
        """The page acknowledges a message once it is on its disk; until then it stays queued."""
        deadline = time.monotonic() + timeout
        while (await self.phone(number))["queued"]:
            assert time.monotonic() < deadline, f"phone {number} still has queued messages"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def sim_client(base_url: str) -> AsyncIterator[SimClient]:
    async with aiohttp.ClientSession() as session:
        yield SimClient(base_url, session)


@contextlib.asynccontextmanager
async def chromium(profile: Path, extra_args: tuple[str, ...] = ()) -> AsyncIterator[Any]:
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
            args=[*CHROMIUM_ARGS, *extra_args],
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
    while (pids := processes_naming(profile)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return pids


async def open_whatsapp(browser: Any, url: str, *, before: tuple[str, ...] = ()) -> Any:
    """The bot's first step: open WHATSAPP_WEB_URL (here with the test recorder installed, and any
    `before` scripts run ahead of the page's own)."""
    page = (await browser.pages())[0]
    page.errors = []
    page.on("pageerror", page.errors.append)
    for script in (RECORDER, *before):
        await page.evaluateOnNewDocument(script)
    await page.goto(url)
    return page


async def wait_for(page: Any, expression: str, timeout_ms: int = 8000) -> Any:
    """Wait until a JS expression over the page's modules is truthy; returns its value.

    Polls on a timer: the default (requestAnimationFrame) never fires in a background tab. A page
    that reloads itself meanwhile (after a logout) is waited on in its new document: pyppeteer's own
    wait gives up when the document it polls goes away."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        left = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            handle = await page.waitForFunction(
                f"() => {{ {_PRELUDE} return ({expression}); }}", {"timeout": left, "polling": 50}
            )
            return await handle.jsonValue()
        except (NetworkError, ElementHandleError) as exc:
            gone = "navigated" in str(exc) or "context was destroyed" in str(exc) or "Cannot find context" in str(exc)
            if not gone or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)


async def js(page: Any, expression: str) -> Any:
    return await page.evaluate(f"() => {{ {_PRELUDE} return ({expression}); }}")


async def recorded(page: Any) -> dict[str, Any]:
    return await page.evaluate("() => window.recorded")


async def stored(page: Any, key: str, store: str = "user") -> Any:
    """A value of the page's own storage (IndexedDB `wawc`, store `store`), or None."""
    return await page.evaluate(
        """(key, store) => new Promise((resolve, reject) => {
             const open = indexedDB.open('wawc');
             open.onerror = () => reject(open.error);
             open.onsuccess = () => {
               const get = open.result.transaction(store).objectStore(store).get(key);
               get.onsuccess = () => resolve(get.result === undefined ? null : get.result);
               get.onerror = () => reject(get.error);
             };
           })""",
        key,
        store,
    )


async def stored_keys(page: Any, store: str) -> list[str]:
    """Every key of one store of the page's IndexedDB."""
    return await page.evaluate(
        """(store) => new Promise((resolve, reject) => {
             const open = indexedDB.open('wawc');
             open.onerror = () => reject(open.error);
             open.onsuccess = () => {
               const get = open.result.transaction(store).objectStore(store).getAllKeys();
               get.onsuccess = () => resolve(get.result);
               get.onerror = () => reject(get.error);
             };
           })""",
        store,
    )


async def state(page: Any) -> str:
    return await js(page, "Socket.state")


async def qr_payload(page: Any) -> str:
    """The payload exactly as whatsapp-web.js 1.34.7 builds it from the modules (Client.js inject)."""
    return await page.evaluate(
        """async () => {
      const r = window.require;
      const { Conn } = r('WAWebConnModel');
      const registrationInfo = await r('WAWebSignalStoreApi').waSignalStore.getRegistrationInfo();
      const noiseKeyPair = await r('WAWebUserPrefsInfoStore').waNoiseInfo.get();
      const { encodeB64 } = r('WABase64');
      return [
        Conn.ref,
        encodeB64(noiseKeyPair.staticKeyPair.pubKey),
        encodeB64(registrationInfo.identityKeyPair.pubKey),
        r('WAWebUserPrefsMultiDevice').getADVSecretKey(),
        r('WAWebCompanionRegClientUtils').DEVICE_PLATFORM,
      ].join(',');
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


# As whatsapp-web.js's WWebJS.sendMessage sends a text (src/util/Injected/Utils.js): a MsgKey it
# builds itself, then addAndSendMsgToChat. Resolves once the message is stored (msgPromise); the send
# result is kept in window.sendResults[<serialized key>] for `send_result`. A refusal comes back as {error}.
_SEND = """async ({ to, body, id }) => {
  const r = window.require;
  const { chat } = await r('WAWebFindChatAction').findOrCreateLatestChat(r('WAWebWidFactory').createWid(to));
  const { getMaybeMeLidUser, getMaybeMePnUser } = r('WAWebUserPrefsMeUser');
  const from = chat.id.isLid() ? getMaybeMeLidUser() : getMaybeMePnUser();
  const participant = chat.id.isGroup() || chat.id.isStatus() ? r('WAWebWidFactory').asUserWidOrThrow(from) : undefined;
  const MsgKey = r('WAWebMsgKey');
  const key = new MsgKey({ from, to: chat.id, id: id || await MsgKey.newId(), participant, selfDir: 'out' });
  const [msgPromise, sendResultPromise] = r('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {
    id: key, ack: 0, body, from, to: chat.id, local: true, self: 'out',
    t: Math.floor(Date.now() / 1000), isNewMsg: true, type: 'chat',
  });
  const outcome = sendResultPromise.then((result) => ({ result }), (err) => ({ error: err.message }));
  try { await msgPromise; } catch (err) { await outcome; return { id: key.id, error: err.message }; }
  window.sendResults = window.sendResults || {};
  window.sendResults[key._serialized] = outcome;
  return { id: key.id, key: key._serialized };
}"""


async def send(page: Any, to: str, body: str, *, id: str | None = None) -> dict[str, Any]:
    """Add and send a text to chat `to` (a serialized wid); returns {id, key} once it is stored, or
    {id, error} if the page refused it. The send itself may still be waiting (`send_result`)."""
    return await page.evaluate(_SEND, {"to": to, "body": body, "id": id})


async def send_result(page: Any, key: str, timeout: float = 8) -> dict[str, Any]:
    """The sendResultPromise of an earlier `send` (by its serialized key): {result} or {error}."""
    return await asyncio.wait_for(page.evaluate("(key) => window.sendResults[key]", key), timeout)


