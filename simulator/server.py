"""The simulator's HTTP side: the WhatsApp-Web-like page, its WebSocket, and the JSON control API.

All rules live in `state.SimState`; this module parses requests, turns state `Effect`s into frames
on the right page socket, runs the clock (`tick`) and persists links to `--state-file`. The page
contract and the control API are documented in simulator/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from simulator.state import QR_REFS_PER_BATCH, Close, DeviceKeys, Effect, Send, SimError, SimState

log = logging.getLogger("simulator")

STATIC_DIR = Path(__file__).parent / "static"
TICK_SECONDS = 0.05
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_KEY = re.compile(r"[A-Za-z0-9+/=]{16,128}")
MAX_DROP_MS = 24 * 3600 * 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class SimConfig:
    """The knobs of one simulator run (see `python -m simulator --help`)."""

    qr_rotate_ms: int = 20_000
    qr_refs_per_batch: int = QR_REFS_PER_BATCH
    ping_interval_ms: int = 2_000
    ping_timeout_ms: int = 6_000
    # After CONNECTED, how long the page takes at least to sync (Socket.hasSynced).
    sync_delay_ms: int = 500
    state_file: Path | None = None
    # window.Debug.VERSION: whatsapp-web.js 1.34's default web version, the one this page follows.
    wa_version: str = "2.3000.1017054665"
    # Modules the page leaves out, to show what a driver does when WhatsApp Web changes.
    without_modules: tuple[str, ...] = ()


class Hub:
    """The live page sockets by device id, and the one place where effects become frames.

    One lock serialises writes so frames reach a page in the order the state produced them.
    """

    def __init__(self) -> None:
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self._lock = asyncio.Lock()

    async def apply(self, effects: list[Effect]) -> None:
        """Push frames, then close sockets; a page that went away meanwhile is skipped.

        Closing waits for the page's reply, so it happens outside the lock.
        """
        async with self._lock:
            for effect in effects:
                ws = self.sockets.get(effect.device)
                if isinstance(effect, Send) and ws is not None and not ws.closed:
                    await _send_quietly(ws, effect.message)
        for effect in effects:
            ws = self.sockets.get(effect.device)
            if isinstance(effect, Close) and ws is not None and not ws.closed:
                await ws.close(code=1001, message=b"network drop")

    async def take_over(self, device_id: str, ws: web.WebSocketResponse) -> None:
        """A second page of the same profile replaces the first, which is told CONFLICT."""
        async with self._lock:
            old = self.sockets.get(device_id)
            self.sockets[device_id] = ws
        if old is not None and not old.closed:
            await _send_quietly(old, {"type": "conflict"})
            await old.close()

    async def close_all(self) -> None:
        """Shutdown: pages see their socket close (and go to TIMEOUT)."""
        for ws in list(self.sockets.values()):
            await ws.close(code=1001, message=b"simulator shutting down")


async def _send_quietly(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json(message)


STATE_KEY = web.AppKey("state", SimState)
HUB_KEY = web.AppKey("hub", Hub)
CONFIG_KEY = web.AppKey("config", SimConfig)


def create_app(config: SimConfig) -> web.Application:
    """The aiohttp application; state is loaded from `config.state_file` if it exists."""
    state = SimState(qr_rotate_ms=config.qr_rotate_ms, qr_refs_per_batch=config.qr_refs_per_batch)
    if config.state_file is not None and config.state_file.exists():
        state.restore(json.loads(config.state_file.read_text(encoding="utf-8")))
        log.info("restored links from %s", config.state_file)
    app = web.Application(middlewares=[json_errors])
    app[STATE_KEY] = state
    app[HUB_KEY] = Hub()
    app[CONFIG_KEY] = config
    app.cleanup_ctx.append(_clock)
    app.on_shutdown.append(_close_sockets)
    app.add_routes(
        [
            web.get("/", index),
            web.get("/wa.js", static_file("wa.js", "text/javascript")),
            web.get("/_sim/", static_file("phone.html", "text/html")),
            web.get("/_sim", static_file("phone.html", "text/html")),
            web.get("/_sim/ws", page_socket),
            web.post("/_sim/scan", scan),
            web.get("/_sim/devices", devices),
            web.post("/_sim/devices/{device}/refresh", refresh_device),
            web.get("/_sim/phones", phones),
            web.post("/_sim/phones/{phone}/messages", post_message),
            web.get("/_sim/phones/{phone}/outbox", get_outbox),
            web.get("/_sim/phones/{phone}/conversation", get_conversation),
            web.delete("/_sim/phones/{phone}/outbox", clear_outbox),
            web.post("/_sim/phones/{phone}/disconnect", disconnect),
            web.post("/_sim/phones/{phone}/logout", logout),
            web.post("/_sim/reset", reset),
        ]
    )
    return app


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON `{"error": ...}` with a 4xx status; never an HTML page."""
    try:
        return await handler(request)
    except SimError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception:
        log.exception("bug while handling %s %s", request.method, request.path)
        return web.json_response({"error": "internal simulator error (see its log)"}, status=500)


async def _clock(app: web.Application) -> AsyncIterator[None]:
    """Ticks the state (ref rotation, held-back deliveries) and saves it when it changed."""
    state, hub, path = app[STATE_KEY], app[HUB_KEY], app[CONFIG_KEY].state_file
    saved = state.revision

    def save_if_changed() -> None:
        nonlocal saved
        if path is not None and state.revision != saved:
            _write_atomically(path, json.dumps(state.snapshot(), indent=1))
            saved = state.revision

    async def run() -> None:
        while True:
            try:
                await hub.apply(state.tick())
                save_if_changed()
            except Exception:
                # A bug or a full disk must not stop QR rotation and deliveries for good.
                log.exception("simulator clock tick failed")
            await asyncio.sleep(TICK_SECONDS)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    save_if_changed()


async def _close_sockets(app: web.Application) -> None:
    """Long-lived page sockets would hold shutdown up; closing them sends pages to TIMEOUT."""
    await app[HUB_KEY].close_all()


def _write_atomically(path: Path, text: str) -> None:
    """A crash mid-write must not leave a half file that loses every link."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the page ----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    """WHATSAPP_WEB_URL: the page, with the ping settings baked into its script tag."""
    config = request.app[CONFIG_KEY]
    values = {
        "PING_INTERVAL_MS": str(config.ping_interval_ms),
        "PING_TIMEOUT_MS": str(config.ping_timeout_ms),
        "SYNC_DELAY_MS": str(config.sync_delay_ms),
        "VERSION": html.escape(config.wa_version),
        "WITHOUT": html.escape(",".join(config.without_modules)),
    }
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name, value in values.items():
        page = page.replace("{{" + name + "}}", value)
    return _no_store(page, "text/html")


def static_file(name: str, content_type: str) -> Handler:
    """Serve one file of static/ (read per request, like the page, so edits show on reload)."""
    path = STATIC_DIR / name

    async def handler(request: web.Request) -> web.Response:
        return _no_store(path.read_text(encoding="utf-8"), content_type)

    return handler


def _no_store(text: str, content_type: str) -> web.Response:
    # A reload must fetch the page again, as the bot's reconnect manager expects.
    return web.Response(text=text, content_type=content_type, headers={"Cache-Control": "no-store"})


async def page_socket(request: web.Request) -> web.StreamResponse:
    """The page's connection to the service, identified by `?device=<WABrowserId>`."""
    state, hub = request.app[STATE_KEY], request.app[HUB_KEY]
    device_id = request.query.get("device", "")
    if not _DEVICE_ID.fullmatch(device_id):
        raise SimError(400, "query parameter device must be 8 to 64 characters [A-Za-z0-9_-]")
    if state.is_refused(device_id):
        raise SimError(503, "network drop in progress: connection refused")
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    await hub.take_over(device_id, ws)
    try:
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            if not state.is_silenced(device_id):
                await _on_page_frame(request.app, device_id, frame.data)
    finally:
        if hub.sockets.get(device_id) is ws:
            del hub.sockets[device_id]
            state.disconnect(device_id)
    return ws


async def _on_page_frame(app: web.Application, device_id: str, data: str) -> None:
    """One frame from a page; malformed frames are logged and ignored (the page is ours)."""
    state, hub = app[STATE_KEY], app[HUB_KEY]
    try:
        frame = json.loads(data)
        kind = frame["type"]
        if kind == "ping":
            await hub.apply([Send(device_id, {"type": "pong", "t": _epoch_ms()})])
        elif kind == "hello":
            keys = DeviceKeys(*(frame["keys"][k] for k in ("noise", "identity", "adv")))
            if not all(_KEY.fullmatch(k) for k in (keys.noise, keys.identity, keys.adv)):
                raise ValueError("keys must be base64")
            wid = frame.get("wid")
            if wid is not None and not isinstance(wid, str):
                raise ValueError("wid must be a string")
            browser = frame.get("browser")
            if browser is not None and not (isinstance(browser, dict) and
                                            all(isinstance(browser.get(k, ""), str) for k in ("name", "os"))):
                raise ValueError("browser must be {name, os}")
            await hub.apply(state.connect(device_id, keys, wid, browser))
        elif kind == "ack":
            state.acknowledge(device_id, int(frame["seq"]))
        elif kind == "state":
            state.report_state(device_id, str(frame["state"]))
        elif kind == "send":
            await hub.apply([_send_reply(state, device_id, frame)])
        elif kind == "refresh":
            await hub.apply(state.refresh_qr(device_id))
        elif kind == "logout":
            state.page_logout(device_id)
        else:
            raise ValueError(f"unknown frame type {kind!r}")
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignored a malformed frame from device %s: %r", device_id, exc)


def _send_reply(state: SimState, device_id: str, frame: dict[str, Any]) -> Send:
    request_id = frame["req"]
    try:
        sent = state.record_send(device_id, str(frame["id"]), str(frame["chat"]), str(frame["body"]),
                                 resend=bool(frame.get("resend")))
    except SimError as exc:
        return Send(device_id, {"type": "send-error", "req": request_id, "error": exc.message})
    return Send(device_id, {"type": "sent", "req": request_id, "id": sent.id, "t": sent.sent_at_ms // 1000})


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the control API ---------------------------------------------------------------------------


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object in the body; an empty body is `{}` where every field has a default."""
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimError(400, f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SimError(400, "body must be a JSON object")
    return data


def _field(data: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    """A typed field; missing without a default or of the wrong type is a 400."""
    if name not in data:
        if default is ...:
            raise SimError(400, f"missing field {name!r}")
        return default
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SimError(400, f"field {name!r} must be of type {kind.__name__}")
    return value


async def scan(request: web.Request) -> web.Response:
    """The phone scanned a QR payload: link the device showing it."""
    data = await _body(request)
    qr, phone = _field(data, "qr", str), _field(data, "phone", str)
    name = _field(data, "name", str, "")
    state = request.app[STATE_KEY]
    device_id, effects = state.scan(qr, phone, name)
    await request.app[HUB_KEY].apply(effects)
    return web.json_response({"device": device_id, "phone": phone})


async def devices(request: web.Request) -> web.Response:
    """Every device with its current QR payload."""
    return web.json_response(request.app[STATE_KEY].devices())


async def refresh_device(request: web.Request) -> web.Response:
    """A person clicks "Click to reload QR code" on that computer's idle page: a new batch of refs."""
    device_id = request.match_info["device"]
    if not any(d["device"] == device_id for d in request.app[STATE_KEY].devices()):
        raise SimError(404, f"unknown device {device_id}")
    effects = request.app[STATE_KEY].refresh_qr(device_id)
    await request.app[HUB_KEY].apply(effects)
    return web.json_response({"device": device_id, "refreshed": bool(effects)})


async def phones(request: web.Request) -> web.Response:
    """Every phone with its link and counters."""
    return web.json_response(request.app[STATE_KEY].phones())


async def post_message(request: web.Request) -> web.Response:
    """Something reaches the phone's account (a customer writes, a status post, the owner types…);
    delivered now or when its device is next connected."""
    data = await _body(request)
    kind = _field(data, "kind", str, "dm")
    queued, effects = request.app[STATE_KEY].post_message(request.match_info["phone"], kind, data)
    await request.app[HUB_KEY].apply(effects)
    return web.json_response({"queued": queued}, status=202)


async def get_outbox(request: web.Request) -> web.Response:
    """What the phone's device sent, in send order."""
    sent = request.app[STATE_KEY].outbox(request.match_info["phone"])
    return web.json_response([entry.to_json() for entry in sent])


async def get_conversation(request: web.Request) -> web.Response:
    """The outbox for a person: each reply with its device's name and what the customer wrote before it."""
    return web.json_response(request.app[STATE_KEY].conversation(request.match_info["phone"]))


async def clear_outbox(request: web.Request) -> web.Response:
    """Empty the phone's outbox."""
    request.app[STATE_KEY].clear_outbox(request.match_info["phone"])
    return web.json_response({"cleared": True})


async def disconnect(request: web.Request) -> web.Response:
    """A network drop of the phone's device, loud (socket closed) or silent (no answers)."""
    data = await _body(request, optional=True)
    duration_ms = _field(data, "duration_ms", int, 3000)
    silent = _field(data, "silent", bool, False)
    device_id = _field(data, "device", str, None)
    if not 0 <= duration_ms <= MAX_DROP_MS:
        raise SimError(400, f"duration_ms must be between 0 and {MAX_DROP_MS}")
    effects = request.app[STATE_KEY].drop(request.match_info["phone"], duration_ms, silent=silent,
                                          device_id=device_id)
    await request.app[HUB_KEY].apply(effects)
    return web.json_response(
        {"phone": request.match_info["phone"], "duration_ms": duration_ms, "silent": silent}
    )


async def logout(request: web.Request) -> web.Response:
    """The phone unlinks its devices, or the one named by `{"device": ...}`."""
    data = await _body(request, optional=True)
    effects = request.app[STATE_KEY].logout(request.match_info["phone"], _field(data, "device", str, None))
    await request.app[HUB_KEY].apply(effects)
    return web.json_response({"phone": request.match_info["phone"], "logged_out": True})


async def reset(request: web.Request) -> web.Response:
    """Forget every device, link, queue and outbox."""
    await request.app[HUB_KEY].apply(request.app[STATE_KEY].reset())
    return web.json_response({"reset": True})
