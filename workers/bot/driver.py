"""The only module that knows WhatsApp Web's page.

Everything the bot relies on about the page is here: module names, fields,
events, selectors and the scripts injected into it. What it relies on:

- WhatsApp Web's own module system, `window.require(name)`, as maintained
  libraries (whatsapp-web.js) use it:
  `WAWebSocketModel.Socket` — the connection state (`state`, `change:state`);
  `WAWebConnModel.Conn` — the QR ref (`ref`, `change:ref`) and, once linked,
  the own number (`wid.user`);
  `WAWebRegistrationUtils` — the device keys that, with the ref, form the QR
  payload `ref,noiseKey,identityKey,advSecret`;
  `WAWebCollections.Msg` — `add` events of incoming messages, and the
  messages it already holds (`getModelsArray`) to catch up after a restart;
  `WAWebCmd.Cmd` — `logout` when the phone unlinks this device;
  `WAWebWidFactory`, `WAWebFindChatAction`, `WAWebSendTextMsgChatAction` — to
  find a chat and send text to it, with a message id we choose.
- A cheap DOM fallback if the internals move: the QR container
  `div[data-ref]` (its attribute is the payload) and the chat list `#pane-side`.

The page is turned into events (`DriverEvent`) delivered to one callback.
The hooks are injected with `evaluateOnNewDocument`, so every navigation,
reload or renderer swap ("execution context destroyed") gets them again;
reads that race a navigation are retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyppeteer.errors import NetworkError, PageError
from pyppeteer.page import Page

log = logging.getLogger(__name__)

BINDING = "__flowhqEmit"
CONNECTED = "CONNECTED"
# Socket states in which WhatsApp Web will not come back by itself.
UNPAIRED_STATES = {"UNPAIRED", "UNPAIRED_IDLE"}
# A connection attempt that ended in one of these failed; only a reload tries again.
FAILED_STATES = {"TIMEOUT", "CONFLICT", "PROXYBLOCK", "TOS_BLOCK", "DEPRECATED_VERSION"}

# A function (not an IIFE): evaluateOnNewDocument calls it in every new document.
HOOKS_JS = """
() => {
  const emit = (type, data) => { try { window.__flowhqEmit(JSON.stringify(Object.assign({type}, data || {}))); } catch (e) {} };
  const mod = (name) => { try { return window.require(name); } catch (e) { return null; } };
  const install = () => {
    if (window.__flowhqHooked) return true;
    if (typeof window.require !== 'function') return false;
    const sock = mod('WAWebSocketModel'), conn = mod('WAWebConnModel'), coll = mod('WAWebCollections');
    const cmd = mod('WAWebCmd'), reg = mod('WAWebRegistrationUtils');
    if (!sock || !conn || !coll || !reg) return false;
    window.__flowhqHooked = true;
    const Socket = sock.Socket, Conn = conn.Conn;
    const qr = async (ref) => {
      if (!ref) return;
      const keys = await Promise.all([reg.getNoiseKeyB64(), reg.getIdentityKeyB64(), reg.getADVSecretKey()]);
      emit('qr', {payload: [ref].concat(keys).join(',')});
    };
    const state = (value) => emit('state', {state: value, wid: Conn.wid ? Conn.wid.user : null});
    Conn.on('change:ref', (_m, ref) => qr(ref));
    Socket.on('change:state', (_m, value) => state(value));
    coll.Msg.on('add', (msg) => {
      if (!msg || msg.fromMe || msg.isNewMsg === false) return;
      emit('message', {
        id: msg.id && msg.id.id, chat: (msg.id && msg.id.remote) || msg.from, from: msg.from,
        body: msg.body || '', t: msg.t || null, name: msg.notifyName || '', kind: msg.type || 'chat',
      });
    });
    if (cmd && cmd.Cmd) cmd.Cmd.on('logout', () => emit('logout', {}));
    state(Socket.state);
    if (Conn.ref && !Conn.wid) qr(Conn.ref);
    return true;
  };
  const fallbackQr = () => {
    const el = document.querySelector('div[data-ref]');
    const ref = el && el.getAttribute('data-ref');
    if (ref && ref !== window.__flowhqLastDomRef) { window.__flowhqLastDomRef = ref; emit('qr', {payload: ref, via: 'dom'}); }
  };
  const tick = setInterval(() => { if (install()) clearInterval(tick); else fallbackQr(); }, 100);
}
"""

STATE_JS = """
() => {
  const out = {internal: false, socket: null, ref: null, wid: null, dom_qr: null, dom_connected: false};
  try {
    const Socket = window.require('WAWebSocketModel').Socket, Conn = window.require('WAWebConnModel').Conn;
    out.internal = true; out.socket = Socket.state; out.ref = Conn.ref || null;
    out.wid = Conn.wid ? Conn.wid.user : null;
  } catch (e) {}
  const qr = document.querySelector('div[data-ref]');
  out.dom_qr = qr ? qr.getAttribute('data-ref') : null;
  out.dom_connected = !!document.querySelector('#pane-side');
  return out;
}
"""

# The message id is ours: WhatsApp treats it as an idempotency key, so sending
# the same id again (after a crash, say) does not deliver the text twice.
# Messages WhatsApp Web already holds (its history, loaded after a restart): the
# pipeline catches up on those it never logged, e.g. because the previous
# process died between the page taking a message and handling it.
HISTORY_JS = """
(since) => window.require('WAWebCollections').Msg.getModelsArray()
  .filter((m) => m && !m.fromMe && (m.t || 0) >= since)
  .map((m) => ({
    id: m.id && m.id.id, chat: (m.id && m.id.remote) || m.from, from: m.from, body: m.body || '',
    t: m.t || null, name: m.notifyName || '', kind: m.type || 'chat',
  }))
  .sort((a, b) => (a.t || 0) - (b.t || 0))
"""

SEND_JS = """
async (to, body, id) => {
  const wid = window.require('WAWebWidFactory').createWid(to);
  let chat = window.require('WAWebCollections').Chat.get(wid._serialized);
  if (!chat) chat = (await window.require('WAWebFindChatAction').findOrCreateLatestChat(wid)).chat;
  const result = await window.require('WAWebSendTextMsgChatAction').sendTextMsgToChat(chat, body, {id});
  if (!result || result.messageSendResult !== 'OK') throw new Error('send failed: ' + JSON.stringify(result));
  return result.id || null;
}
"""


@dataclass(frozen=True)
class DriverEvent:
    """kind: qr | state | message | logout. For state: `state`, `wid`."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PageState:
    internal: bool
    socket: str | None
    ref: str | None
    wid: str | None
    dom_qr: str | None
    dom_connected: bool

    @property
    def connected(self) -> bool:
        return self.socket == CONNECTED if self.internal else self.dom_connected


class SendFailed(Exception):
    pass


def chat_id(number_or_chat: str) -> str:
    """`4915...` or `4915...@c.us` → the chat id WhatsApp uses."""
    value = number_or_chat.strip()
    return value if "@" in value else f"{value.lstrip('+')}@c.us"


def number_of(chat: str) -> str:
    return chat.split("@", 1)[0]


class WhatsAppDriver:
    def __init__(self, page: Page, on_event: Callable[[DriverEvent], None]) -> None:
        self.page = page
        self._on_event = on_event

    async def open(self, url: str) -> None:
        await self.page.exposeFunction(BINDING, self._emit)
        await self.page.evaluateOnNewDocument(HOOKS_JS)
        await self.page.goto(url, waitUntil="domcontentloaded", timeout=60_000)

    async def reload(self) -> None:
        await self.page.reload(waitUntil="domcontentloaded", timeout=60_000)

    async def blank(self) -> None:
        """Leave WhatsApp Web (it stops rotating QR codes)."""
        await self.page.goto("about:blank")

    def _emit(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("unreadable event from the page", extra={"raw": str(raw)[:200]})
            return
        self._on_event(DriverEvent(data.pop("type", "?"), data))

    async def state(self, timeout: float = 5.0) -> PageState:
        """WhatsApp's own view of the connection, read from inside the page."""
        raw = await self._evaluate(STATE_JS, timeout=timeout)
        return PageState(**raw)

    async def recent_messages(self, since: float, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Incoming messages the page holds with a timestamp at or after `since` (unix seconds)."""
        try:
            return await self._evaluate(HISTORY_JS, since, timeout=timeout) or []
        except (PageError, NetworkError, TimeoutError) as exc:
            log.warning("could not read the message history", extra={"error": str(exc)})
            return []

    async def send_text(self, to: str, body: str, *, message_id: str, timeout: float = 20.0) -> str | None:
        try:
            return await self._evaluate(SEND_JS, chat_id(to), body, message_id, timeout=timeout)
        except (PageError, NetworkError, TimeoutError) as exc:
            raise SendFailed(str(exc) or type(exc).__name__) from exc

    async def _evaluate(self, script: str, *args: Any, timeout: float, attempts: int = 3) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return await asyncio.wait_for(self.page.evaluate(script, *args), timeout)
            except NetworkError as exc:
                # A navigation replaced the document under us; the hooks come back with it.
                if "context" not in str(exc).lower() or attempt == attempts:
                    raise
                await asyncio.sleep(0.2 * attempt)
        raise AssertionError("unreachable")
