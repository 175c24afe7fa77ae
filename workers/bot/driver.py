"""The only module that knows WhatsApp Web's page.

It uses what the maintained client whatsapp-web.js (1.34.7: `src/Client.js` `inject()` and
`attachEventListeners()`, `src/util/Injected/AuthStore/AuthStore.js`, `src/util/Injected/Utils.js`
`WWebJS.sendMessage`, `src/structures/Message.js`) uses on the real page, call for call, and
nothing else — the simulator is held to the same surface by running whatsapp-web.js against it
(tests/conformance):

- readiness: `window.Debug.VERSION` (the page's version, recorded on the session), within
  WHATSAPP_WEB_LOAD_TIMEOUT_MS;
- the connection: `WAWebSocketModel.Socket` — `state` and `change:state`, `hasSynced` and
  `change:hasSynced`, `logout()` (as `client.logout()`); `WAWebCmd.Cmd` — `logout`, `logout_from_bridge`, `refreshQR()`;
- the QR, built as whatsapp-web.js builds it: `WAWebConnModel.Conn.ref` and `change:ref`,
  `WAWebUserPrefsInfoStore.waNoiseInfo`, `WAWebSignalStoreApi.waSignalStore`,
  `WAWebUserPrefsMultiDevice.getADVSecretKey()`, `WAWebCompanionRegClientUtils.DEVICE_PLATFORM`,
  `WABase64.encodeB64` → `ref,staticKey,identityKey,advSecret,platform`;
- the own number: `WAWebUserPrefsMeUser.getMaybeMePnUser()`;
- the device's name on the phone's list of linked devices: `WAWebMiscBrowserUtils.info` wrapped to
  return the tenant's name as `os` and "FlowHQ" as `name`, as whatsapp-web.js's `deviceName` /
  `browserName` options do (`Client.setDeviceName`), before the page links;
- messages: `WAWebCollections.Msg` `add` with `isNewMsg`, direction by `id.fromMe` (the models have
  no top-level `fromMe`), a `ciphertext` waited for until `change:type` makes it readable,
  `change:type` → `revoked`, `change:body`/`change:caption` (edits); LID senders resolved with
  `WAWebApiContact.getPhoneNumber`; what the page holds (`Msg` and each `Chat`'s `msgs`) to catch up;
- sending: a `WAWebMsgKey` the bot builds (its id derived from the message it answers), looked up
  in the page first (`Msg.get`, `Msg.getMessagesById`, the chat's `msgs`), then
  `WAWebSendMsgChatAction.addAndSendMsgToChat(chat, msg)` → `[msgPromise, sendResultPromise]`.

Why not inject whatsapp-web.js's own `WWebJS.sendMessage`: it makes its key with
`WAWebMsgKey.newId()` and offers no way to choose it, and the chosen key is what lets a bot that
crashed mid-send find out whether WhatsApp already has its reply.

Each hook installs on its own; a module that is not there is reported by name (`ModulesMissing`)
instead of a hook that waits forever. The hooks are injected with `evaluateOnNewDocument`, so
every navigation or reload gets them again; reads that race a navigation are retried.
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
# The page shows a QR (UNPAIRED) or has stopped rotating them until asked (UNPAIRED_IDLE).
UNPAIRED_STATES = {"UNPAIRED", "UNPAIRED_IDLE"}
# A connection attempt that ended in one of these failed for now (WhatsApp Web retries TIMEOUT itself).
FAILED_STATES = {"TIMEOUT", "CONFLICT", "PROXYBLOCK", "TOS_BLOCK", "SMB_TOS_BLOCK", "DEPRECATED_VERSION"}
# A ciphertext that is still not readable after this long is handed over as such (whatsapp-web.js: 15 s).
CIPHERTEXT_TIMEOUT_MS = 15_000

# What each hook needs; `hooks` events name the ones the page does not have.
SESSION_MODULES = (
    "WAWebSocketModel", "WAWebConnModel", "WAWebCmd", "WAWebUserPrefsMeUser", "WAWebCompanionRegClientUtils",
    "WAWebAdvSignatureApi", "WAWebUserPrefsInfoStore", "WAWebSignalStoreApi", "WAWebUserPrefsMultiDevice",
    "WABase64",
)
MESSAGE_MODULES = (
    "WAWebCollections", "WAWebApiContact", "WAWebWidFactory", "WAWebMsgKey", "WAWebFindChatAction",
    "WAWebSendMsgChatAction", "WAWebGetEphemeralFieldsMsgActionsUtils",
)

# A function (not an IIFE): evaluateOnNewDocument calls it in every new document, with `config`.
HOOKS_JS = """
(config) => {
  const emit = (type, data) => { try { window.__flowhqEmit(JSON.stringify(Object.assign({type}, data || {}))); } catch (e) {} };
  const req = (name) => window.require(name);
  const missing = (names) => names.filter((name) => { try { return !req(name); } catch (e) { return true; } });
  const ser = (w) => (w && typeof w === 'object' ? w._serialized : w) || null;
  const MEDIA = ['image', 'video', 'audio', 'ptt', 'document', 'sticker'];
  const flowhq = window.__flowhq = { messagesInstalled: false, ciphertexts: new Set() };

  // A LID (…@lid) sender becomes the number the page knows for it, so one person is one chat.
  flowhq.resolve = (serialized) => {
    if (!serialized || !serialized.endsWith('@lid')) return serialized;
    try {
      const pn = req('WAWebApiContact').getPhoneNumber(req('WAWebWidFactory').createWid(serialized));
      return ser(pn) || serialized;
    } catch (e) { return serialized; }
  };

  // One message as the bot sees it; `text` is what a person wrote (the caption of media).
  flowhq.describe = (msg) => {
    const key = msg.id, remote = ser(key.remote), server = remote.split('@')[1];
    const author = ser(msg.author) || ser(key.participant);
    const media = MEDIA.includes(msg.type);
    return {
      id: key.id, key: key._serialized, from_me: Boolean(key.fromMe), wa_chat: remote, chat: flowhq.resolve(remote),
      author: author ? flowhq.resolve(author) : null, kind: msg.type,
      text: media ? (msg.caption || '') : (msg.type === 'chat' ? (msg.body || '') : ''),
      name: msg.notifyName || '', t: msg.t || null,
      status: remote === 'status@broadcast' || Boolean(msg.isStatusV3), newsletter: server === 'newsletter',
      group: server === 'g.us', broadcast: server === 'broadcast',
    };
  };

  // A ciphertext is waited for until WhatsApp Web decrypts it (change:type); one that never is goes
  // on as kind 'ciphertext' after the timeout, so it is logged rather than lost.
  flowhq.waitReadable = (msg) => {
    const key = msg.id._serialized;
    if (flowhq.ciphertexts.has(key)) return;
    flowhq.ciphertexts.add(key);
    setTimeout(() => {
      if (!flowhq.ciphertexts.delete(key)) return;
      emit('message', flowhq.describe(msg));
    }, config.cipherTimeoutMs);
  };

  flowhq.installMessages = () => {
    if (flowhq.messagesInstalled) return;
    const lacking = missing(config.messageModules);
    flowhq.messagesInstalled = true;
    emit('hooks', { group: 'messages', version: window.Debug.VERSION, missing: lacking });
    if (lacking.length) return;
    const { Msg } = req('WAWebCollections');
    Msg.on('add', (msg) => {
      if (!msg || !msg.id || !msg.isNewMsg) return;
      if (msg.type === 'ciphertext') { flowhq.waitReadable(msg); return; }
      emit('message', flowhq.describe(msg));
    });
    Msg.on('change:type', (msg) => {
      if (!msg || !msg.id) return;
      if (msg.type === 'revoked') { flowhq.ciphertexts.delete(msg.id._serialized); emit('revoke', flowhq.describe(msg)); return; }
      if (msg.type !== 'ciphertext' && flowhq.ciphertexts.delete(msg.id._serialized)) emit('message', flowhq.describe(msg));
    });
    Msg.on('change:body change:caption', (msg) => {
      if (msg && msg.id && msg.type !== 'revoked' && msg.latestEditMsgKey) emit('edit', flowhq.describe(msg));
    });
  };

  const qr = async (ref) => {
    if (!ref) return;
    try {
      const utils = Object.assign({}, req('WAWebCompanionRegClientUtils'), req('WAWebAdvSignatureApi'),
                                  req('WAWebUserPrefsInfoStore'), req('WAWebSignalStoreApi'));
      const registration = await utils.waSignalStore.getRegistrationInfo();
      const noise = await utils.waNoiseInfo.get();
      const b64 = req('WABase64');
      emit('qr', { payload: [ref, b64.encodeB64(noise.staticKeyPair.pubKey), b64.encodeB64(registration.identityKeyPair.pubKey),
                             req('WAWebUserPrefsMultiDevice').getADVSecretKey(), utils.DEVICE_PLATFORM].join(',') });
    } catch (e) { emit('error', { where: 'qr', error: String(e && e.message || e) }); }
  };

  const installSession = () => {
    const lacking = missing(config.sessionModules);
    emit('hooks', { group: 'session', version: window.Debug.VERSION, missing: lacking });
    if (lacking.length) return;
    const Socket = req('WAWebSocketModel').Socket, Conn = req('WAWebConnModel').Conn, Cmd = req('WAWebCmd').Cmd;
    const me = () => { const wid = req('WAWebUserPrefsMeUser').getMaybeMePnUser(); return wid ? wid.user : null; };
    Socket.on('change:state', (_model, state) => {
      emit('state', { state, wid: me() });
      if (state === 'UNPAIRED') qr(Conn.ref);
    });
    Socket.on('change:hasSynced', () => { if (Socket.hasSynced) { flowhq.installMessages(); emit('synced', {}); } });
    Conn.on('change:ref', (_model, ref) => { if (Socket.state === 'UNPAIRED') qr(ref); });
    Cmd.on('logout', () => emit('logout', { event: 'logout' }));
    Cmd.on('logout_from_bridge', () => emit('logout', { event: 'logout_from_bridge' }));
    emit('state', { state: Socket.state, wid: me() });
    if (Socket.state === 'UNPAIRED') qr(Conn.ref);
    if (Socket.hasSynced) { flowhq.installMessages(); emit('synced', {}); }
  };

  // whatsapp-web.js `setDeviceName(deviceName, browserName)`: what the phone lists this device as.
  const nameDevice = () => {
    if (!config.deviceName && !config.browserName) return;
    try {
      const utils = req('WAWebMiscBrowserUtils'), info = utils.info;
      utils.info = () => Object.assign({}, info(), config.deviceName ? { os: config.deviceName } : {},
                                       config.browserName ? { name: config.browserName } : {});
    } catch (e) { emit('error', { where: 'device name', error: String(e && e.message || e) }); }
  };

  const tick = setInterval(() => {
    if (typeof window.require !== 'function' || !window.Debug || !window.Debug.VERSION) return;
    clearInterval(tick);
    nameDevice();
    installSession();
  }, 50);
}
"""

STATE_JS = """
() => {
  const out = {version: (window.Debug && window.Debug.VERSION) || null, socket: null, synced: false, wid: null};
  try {
    const Socket = window.require('WAWebSocketModel').Socket;
    out.socket = Socket.state; out.synced = Boolean(Socket.hasSynced);
    const me = window.require('WAWebUserPrefsMeUser').getMaybeMePnUser();
    out.wid = me ? me.user : null;
  } catch (e) {}
  return out;
}
"""

# Messages the page holds (Msg, and each chat's msgs) from `since` on, oldest first: after a
# restart, the pipeline catches up on those it never logged. Unreadable ones are waited for.
HISTORY_JS = """
(since) => {
  const flowhq = window.__flowhq;
  const { Msg, Chat } = window.require('WAWebCollections');
  const seen = new Map();
  const take = (msg) => { if (msg && msg.id && (msg.t || 0) >= since) seen.set(msg.id._serialized, msg); };
  Msg.getModelsArray().forEach(take);
  Chat.getModelsArray().forEach((chat) => { if (chat.msgs && chat.msgs.getModelsArray) chat.msgs.getModelsArray().forEach(take); });
  const out = [];
  for (const msg of seen.values()) {
    if (msg.type === 'ciphertext') flowhq.waitReadable(msg);
    else if (msg.type !== 'revoked') out.push(flowhq.describe(msg));
  }
  return out.sort((a, b) => (a.t || 0) - (b.t || 0));
}
"""

# The chat a message to `to` goes to: the one the page has (under its LID, if the person writes
# from one), else the one WhatsApp finds or creates; and our key in it, as whatsapp-web.js builds
# one (`from` the own number, or LID in a LID chat; `participant` in groups).
_CHAT_AND_KEY_JS = """
  const req = (name) => window.require(name);
  const WidFactory = req('WAWebWidFactory'), { Msg, Chat } = req('WAWebCollections');
  const wid = WidFactory.createWid(to);
  let chat = Chat.get(wid);
  if (!chat && wid.server === 'c.us') { const lid = req('WAWebApiContact').getCurrentLid(wid); if (lid) chat = Chat.get(lid); }
  if (!chat) chat = (await req('WAWebFindChatAction').findOrCreateLatestChat(wid)).chat;
  if (!chat) throw new Error('WhatsApp has no chat for ' + to);
  const me = req('WAWebUserPrefsMeUser');
  let from = chat.id.isLid() ? me.getMaybeMeLidUser() : me.getMaybeMePnUser();
  let participant;
  if (chat.id.isGroup()) {
    from = chat.groupMetadata && chat.groupMetadata.isLidAddressingMode ? me.getMaybeMeLidUser() : me.getMaybeMePnUser();
    participant = WidFactory.asUserWidOrThrow(from);
  }
  const MsgKey = req('WAWebMsgKey');
  const key = new MsgKey({ from, to: chat.id, id: keyId, participant, selfDir: 'out' });
  const held = Msg.get(key._serialized) || (chat.msgs && chat.msgs.get(key._serialized))
    || ((await Msg.getMessagesById([key._serialized])) || {messages: []}).messages[0];
"""

LOOKUP_JS = f"""
async (to, keyId) => {{
{_CHAT_AND_KEY_JS}
  return held ? {{ status: 'held', ack: held.ack || 0, key: key._serialized }} : null;
}}
"""

SEND_JS = f"""
async (to, body, keyId, ackTimeoutMs) => {{
{_CHAT_AND_KEY_JS}
  if (held) return {{ status: 'held', ack: held.ack || 0, key: key._serialized }};
  const message = Object.assign({{
    id: key, ack: 0, body, from, to: chat.id, local: true, self: 'out', t: Math.floor(Date.now() / 1000),
    isNewMsg: true, type: 'chat',
  }}, req('WAWebGetEphemeralFieldsMsgActionsUtils').getEphemeralFields(chat));
  const [msgPromise, sendResult] = req('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, message);
  await msgPromise;
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), ackTimeoutMs));
  const result = await Promise.race([sendResult, timeout]);
  if (result === null) return {{ status: 'held', ack: 0, key: key._serialized }};
  if (!result || result.messageSendResult !== 'OK') throw new Error('WhatsApp refused the message: ' + JSON.stringify(result));
  return {{ status: 'sent', ack: 1, key: key._serialized }};
}}
"""

REFRESH_QR_JS = "() => window.require('WAWebCmd').Cmd.refreshQR()"
# whatsapp-web.js `client.logout()`: the page unlinks itself, clears its storage and reloads to a QR.
LOGOUT_JS = "() => window.require('WAWebSocketModel').Socket.logout()"
INSTALL_MESSAGES_JS = "() => window.__flowhq && window.__flowhq.installMessages()"


@dataclass(frozen=True)
class DriverEvent:
    """kind: hooks | state | synced | qr | logout | message | revoke | edit | error | browser_crashed."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PageState:
    version: str | None
    socket: str | None
    synced: bool
    wid: str | None

    @property
    def connected(self) -> bool:
        return self.socket == CONNECTED


@dataclass(frozen=True)
class Delivery:
    """Where WhatsApp Web has our message: `held` (in the page; `ack` 0 until the server took it)
    or `sent` (acknowledged by the server)."""

    status: str
    ack: int

    @property
    def acknowledged(self) -> bool:
        return self.ack >= 1


class SendFailed(Exception):
    pass


class PageNotReady(Exception):
    """WhatsApp Web did not load (no `window.Debug.VERSION`) within the timeout."""


class ModulesMissing(Exception):
    """The page lacks modules the bot relies on: this WhatsApp Web is not one FlowHQ speaks."""

    def __init__(self, version: str | None, names: list[str]) -> None:
        self.version = version
        self.names = names
        what = f"module {names[0]}" if len(names) == 1 else f"modules {', '.join(names)}"
        super().__init__(f"WhatsApp Web {version or '(unknown version)'}: {what} not found")


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
        self._loaded = asyncio.Event()
        self.version: str | None = None
        self._missing: list[str] = []
        self.calls_in_flight = 0

    async def open(self, url: str, *, device_name: str = "", browser_name: str = "") -> None:
        """Load WhatsApp Web with the hooks; `device_name`/`browser_name` name this device on the
        phone (whatsapp-web.js's `deviceName`/`browserName`)."""
        await self.page.exposeFunction(BINDING, self._emit)
        config = {"sessionModules": SESSION_MODULES, "messageModules": MESSAGE_MODULES,
                  "cipherTimeoutMs": CIPHERTEXT_TIMEOUT_MS, "deviceName": device_name,
                  "browserName": browser_name}
        await self.page.evaluateOnNewDocument(HOOKS_JS, config)
        self._loaded.clear()
        await self.page.goto(url, waitUntil="domcontentloaded", timeout=60_000)

    async def reload(self) -> None:
        self._loaded.clear()
        await self.page.reload(waitUntil="domcontentloaded", timeout=60_000)

    async def wait_loaded(self, timeout: float) -> str:
        """Until the page shows `window.Debug.VERSION` and the session hooks are in; its version.

        Raises PageNotReady at the timeout, ModulesMissing if the page lacks a module."""
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            raise PageNotReady(
                f"WhatsApp Web did not load within {timeout:.0f} s (window.Debug.VERSION never appeared)"
            ) from None
        if self._missing:
            raise ModulesMissing(self.version, self._missing)
        return self.version or ""

    async def blank(self) -> None:
        """Leave WhatsApp Web (it stops rotating QR codes)."""
        await self.page.goto("about:blank")

    def _emit(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("unreadable event from the page", extra={"raw": str(raw)[:200]})
            return
        event = DriverEvent(data.pop("type", "?"), data)
        if event.kind == "hooks" and event.data.get("group") == "session":
            self.version = event.data.get("version")
            self._missing = list(event.data.get("missing") or [])
            self._loaded.set()
        self._on_event(event)

    async def state(self, timeout: float = 5.0) -> PageState:
        """WhatsApp's own view of the connection, read from inside the page."""
        raw = await self._evaluate(STATE_JS, timeout=timeout)
        return PageState(**raw)

    async def install_message_hooks(self) -> None:
        """For a page that is connected but never said it synced: listen to messages anyway."""
        await self._evaluate(INSTALL_MESSAGES_JS, timeout=5.0)

    async def refresh_qr(self) -> None:
        """UNPAIRED_IDLE (the page stopped rotating codes): ask for new ones, as a person clicks."""
        await self._evaluate(REFRESH_QR_JS, timeout=5.0)

    async def logout(self) -> None:
        """Unlink this device as whatsapp-web.js's `client.logout()` does; the page emits `logout`
        (Cmd) and reloads to a fresh QR. The reload may end the call before it answers."""
        try:
            await asyncio.wait_for(self.page.evaluate(LOGOUT_JS), 10.0)
        except NetworkError as exc:
            if "context" not in str(exc).lower() and "target closed" not in str(exc).lower():
                raise

    async def recent_messages(self, since: float, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Messages the page holds with a timestamp at or after `since` (unix seconds), both ways."""
        try:
            return await self._evaluate(HISTORY_JS, since, timeout=timeout) or []
        except (PageError, NetworkError, TimeoutError) as exc:
            log.warning("could not read the message history", extra={"error": str(exc)})
            return []

    async def lookup(self, to: str, *, key_id: str, timeout: float = 10.0) -> Delivery | None:
        """Does WhatsApp Web already hold our message `key_id` to `to`? (None: it does not.)"""
        try:
            found = await self._evaluate(LOOKUP_JS, chat_id(to), key_id, timeout=timeout)
        except (PageError, NetworkError, TimeoutError) as exc:
            raise SendFailed(str(exc) or type(exc).__name__) from exc
        return Delivery(found["status"], int(found["ack"])) if found else None

    async def send_text(self, to: str, body: str, *, key_id: str, ack_timeout: float = 10.0) -> Delivery:
        """Send `body` with our key, unless the page already holds a message with that key."""
        try:
            result = await self._evaluate(SEND_JS, chat_id(to), body, key_id, int(ack_timeout * 1000),
                                          timeout=ack_timeout + 10)
        except (PageError, NetworkError, TimeoutError) as exc:
            raise SendFailed(str(exc) or type(exc).__name__) from exc
        return Delivery(result["status"], int(result["ack"]))

    async def idle(self, timeout: float) -> bool:
        """Until no call to the page is in flight (True), or the timeout (False)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.calls_in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return not self.calls_in_flight

    async def _evaluate(self, script: str, *args: Any, timeout: float, attempts: int = 3) -> Any:
        self.calls_in_flight += 1
        try:
            return await self._evaluate_retried(script, *args, timeout=timeout, attempts=attempts)
        finally:
            self.calls_in_flight -= 1

    async def _evaluate_retried(self, script: str, *args: Any, timeout: float, attempts: int) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return await asyncio.wait_for(self.page.evaluate(script, *args), timeout)
            except NetworkError as exc:
                # A navigation replaced the document under us; the hooks come back with it.
                if "context" not in str(exc).lower() or attempt == attempts:
                    raise
                await asyncio.sleep(0.2 * attempt)
        raise AssertionError("unreachable")
