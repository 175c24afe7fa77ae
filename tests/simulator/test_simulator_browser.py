"""The simulator end to end: a real simulator process and real headless Chromium, driven only
through the page contract whatsapp-web.js 1.34.7 uses on WhatsApp Web (window.require modules,
data-ref, #pane-side; simulator/README.md) and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import psutil
import pytest

from simulator.kinds import THUMBNAIL
from tests.harness import ROOT, free_port, self_signed_cert
from tests.simulator.conftest import (
    PING_TIMEOUT_MS,
    QR_ROTATE_MS,
    SimClient,
    Simulator,
    chromium,
    js,
    link,
    open_whatsapp,
    qr_payload,
    recorded,
    running,
    send,
    send_result,
    sim_client,
    state,
    stored,
    stored_keys,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    # pyppeteer 2.0 drives websockets 10 with an argument it deprecated.
    pytest.mark.filterwarnings("ignore:remove loop argument:DeprecationWarning"),
]

PHONE = "15550001111"
CUSTOMER = "15559990000"
GROUP = "120363000000000001"
LID = "211111111111111"
CHANNEL = "120363999999999999"
MESSAGES = f"/_sim/phones/{PHONE}/messages"
OUTBOX = f"/_sim/phones/{PHONE}/outbox"

# Test instrument, not a page API: installed before the page's scripts, it loses every send
# acknowledgement from the service on the way to the page (a reply lost in the network).
LOSE_SEND_ACKS = """
() => {
  const proto = WebSocket.prototype;
  const handler = Object.getOwnPropertyDescriptor(proto, 'onmessage');
  Object.defineProperty(proto, 'onmessage', {
    configurable: true,
    get() { return handler.get.call(this); },
    set(callback) {
      handler.set.call(this, (event) => (JSON.parse(event.data).type === 'sent' ? undefined : callback.call(this, event)));
    },
  });
}
"""
# Test instrument: from now on this document never acknowledges what it received (it dies before).
NEVER_ACKNOWLEDGE = """
() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) { return JSON.parse(data).type === 'ack' ? undefined : send.call(this, data); };
}
"""
# Listeners on Msg for model changes: window.changes gets [event, key id, value, previous].
WATCH_CHANGES = """
() => {
  window.changes = [];
  const { Msg } = window.require('WAWebCollections');
  for (const event of ['change:type', 'change:body', 'change:caption', 'change:ack']) {
    Msg.on(event, (msg, value, previous) => window.changes.push([event, msg.id.id, value, previous]));
  }
}
"""


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 90))


def wid(serialized: str) -> dict[str, str]:
    """A Wid as `serialize()` gives it."""
    user, server = serialized.split("@")
    return {"server": server, "user": user, "_serialized": serialized}


@contextlib.asynccontextmanager
async def fresh(simulator: Simulator) -> AsyncIterator[SimClient]:
    async with sim_client(simulator.url) as client:
        await client.ok("POST", "/_sim/reset")
        yield client


@contextlib.asynccontextmanager
async def linked_page(simulator: Simulator, tmp_path: Any, name: str = "") -> AsyncIterator[tuple[SimClient, Any]]:
    """A fresh simulator state and one Chromium whose page is linked as PHONE."""
    async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
        page = await open_whatsapp(browser, simulator.url)
        await link(page, client, PHONE, name)
        yield client, page
        assert page.errors == []


async def model(page: Any, key: str, fields: str) -> Any:
    """Fields of one Msg model (by serialized key) as a JS object literal over `m`."""
    return await js(page, f"(m => m && ({fields}))(Msg.get({key!r}))")


def test_the_qr_ref_is_exposed_in_conn_and_data_ref_and_rotates(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
            assert await js(page, "window.Debug.VERSION") == "2.3000.1017054665"
            first = await qr_payload(page)
            ref, noise, identity, adv, platform = first.split(",")
            assert re.fullmatch(r"2@[A-Za-z0-9_-]+", ref)
            assert all(re.fullmatch(r"[A-Za-z0-9+/]+=*", key) for key in (noise, identity, adv))
            assert platform == "1", "WAWebCompanionRegClientUtils.DEVICE_PLATFORM: Chrome"
            assert await js(page, "r('WAWebCompanionRegClientUtils').DEVICE_PLATFORM") == 1
            assert await page.Jeval("div[data-ref]", "el => el.getAttribute('data-ref')") == first
            assert await page.querySelector("div[data-ref] canvas[aria-label='Scan me!']") is not None
            assert await page.querySelector("#pane-side") is None
            assert await js(page, "Me.getMaybeMePnUser() === undefined && Me.getMaybeMeLidUser() === undefined")

            (device,) = await client.ok("GET", "/_sim/devices")
            assert device["qr"] == first
            assert device["ref"] == ref
            assert device["online"] is True
            assert device["phone"] is None
            assert device["state"] == "UNPAIRED"
            assert device["device"] == await stored(page, "WABrowserId")

            await wait_for(page, f"Conn.ref && Conn.ref !== {ref!r}", timeout_ms=QR_ROTATE_MS * 3)
            second = await qr_payload(page)
            assert second.split(",")[1:] == first.split(",")[1:], (
                "keys belong to the profile, only the ref rotates"
            )
            await wait_for(
                page, f"document.querySelector('div[data-ref]').getAttribute('data-ref') === {second!r}"
            )
            assert (await client.device(device["device"]))["qr"] == second
            events = await recorded(page)
            assert events["refs"][:2] == [ref, second.split(",")[0]]
            assert events["states"] == ["OPENING", "UNPAIRED"]
            assert page.errors == []

    run(scenario())


def test_an_unknown_module_throws_like_the_real_module_system(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator), chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED'")
            for gone in ("WAWebRegistrationUtils", "WAWebSendTextMsgChatAction", "WAWebNoSuchModule"):
                error = await js(page, f"(() => {{ try {{ r({gone!r}); return null; }} catch (e) {{ return e.message; }} }})()")
                assert error == f'Requiring unknown module "{gone}"'

    run(scenario())


def test_a_scan_links_the_browser_and_a_restart_comes_back_connected_without_a_scan(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                device = await link(page, client, PHONE, name="Demo Shop")
                (phone,) = await client.ok("GET", "/_sim/phones")
                assert await js(page, "Me.getMaybeMePnUser()._serialized") == f"{PHONE}@c.us"
                assert await js(page, "Me.getMaybeMeLidUser()._serialized") == f"{phone['lid']}@lid"
                assert await js(page, "Me.getMaybeMePnUser().isUser() && !Me.getMaybeMePnUser().isLid()")
                assert await js(page, "Conn.pushname") == "Demo Shop"
                assert await js(page, "Conn.serialize().pushname") == "Demo Shop"
                assert (await recorded(page))["states"] == ["OPENING", "UNPAIRED", "PAIRING", "CONNECTED"]
                await page.waitForSelector("#pane-side")
                assert await page.querySelector("div[data-ref]") is None
                bundle = await stored(page, "WASecretBundle")
                assert (bundle["deviceId"], bundle["wid"], bundle["lid"], bundle["pushname"]) == (
                    device, PHONE, phone["lid"], "Demo Shop"
                )
                assert await stored(page, "last-wid-md") == f"{PHONE}@c.us"
                listed = await client.device(device)
                assert (listed["phone"], listed["online"], listed["qr"], listed["state"]) == (
                    PHONE, True, None, "CONNECTED"
                )
                await wait_for(page, "Socket.hasSynced")

            assert (await client.device(device))["online"] is False
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert (await recorded(page))["states"] == ["OPENING", "CONNECTED"]
                assert await js(page, "Me.getMaybeMePnUser()._serialized") == f"{PHONE}@c.us"
                assert await js(page, "Conn.pushname") == "Demo Shop"
                await page.waitForSelector("#pane-side")
                assert page.errors == []

    run(scenario())


def test_has_synced_comes_after_connected_and_after_the_offline_messages(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                await wait_for(page, "Socket.hasSynced")
                timeline = (await recorded(page))["timeline"]
                assert timeline[-2:] == ["state:CONNECTED", "hasSynced:true"], "also right after linking"
            for n in (1, 2):
                await client.post(PHONE, id=f"OFF{n}", **{"from": CUSTOMER, "body": f"#{n}"})
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert await js(page, "Socket.hasSynced") is False
                await wait_for(page, "Socket.hasSynced")
                assert (await recorded(page))["timeline"] == [
                    "state:OPENING", "state:CONNECTED", "add:OFF1", "add:OFF2", "hasSynced:true"
                ]
                assert await js(page, "r('WAWebOfflineHandler').OfflineMessageHandler.getOfflineDeliveryProgress()") == 100
                await client.post(PHONE, id="LIVE1", **{"from": CUSTOMER, "body": "later"})
                await wait_for(page, "window.recorded.messages.length === 3")
                assert (await recorded(page))["synced"] == 1, "hasSynced fires once per page load"

    run(scenario())


def test_the_qr_goes_idle_after_its_batch_and_refresh_qr_starts_a_new_one(tmp_path):
    sim = Simulator(tmp_path / "simulator.log", qr_rotate_ms=500, extra_args=("--qr-refs-per-batch", "2"))

    async def scenario():
        async with sim_client(sim.url) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, sim.url)
            await wait_for(page, "Socket.state === 'UNPAIRED_IDLE'", timeout_ms=5000)
            events = await recorded(page)
            assert events["states"] == ["OPENING", "UNPAIRED", "UNPAIRED_IDLE"]
            assert len(events["refs"]) == 2
            (device,) = await client.ok("GET", "/_sim/devices")
            assert (device["state"], device["ref"], device["qr"]) == ("UNPAIRED_IDLE", None, None)
            status, body = await client.request("POST", "/_sim/scan", {"qr": await qr_payload(page), "phone": PHONE})
            assert status == 410, body
            await asyncio.sleep(0.6)
            assert await state(page) == "UNPAIRED_IDLE", "an idle page stays idle"
            assert len((await recorded(page))["refs"]) == 2

            await js(page, "r('WAWebCmd').Cmd.refreshQR()")
            await wait_for(page, "Socket.state === 'UNPAIRED' && window.recorded.refs.length === 3")
            assert (await recorded(page))["states"][-1] == "UNPAIRED"
            result = await client.ok("POST", "/_sim/scan", {"qr": await qr_payload(page), "phone": PHONE})
            assert result["device"] == device["device"]
            await wait_for(page, "Socket.state === 'CONNECTED'")

    with running(sim):
        run(scenario())


def test_an_idle_qr_gets_new_codes_from_the_phone_page_and_from_a_click_on_the_page(tmp_path):
    sim = Simulator(tmp_path / "simulator.log", qr_rotate_ms=500, extra_args=("--qr-refs-per-batch", "2"))

    async def scenario():
        async with (sim_client(sim.url) as client, chromium(tmp_path / "profile") as browser,
                    chromium(tmp_path / "phone") as phone_browser):
            page = await open_whatsapp(browser, sim.url)
            await wait_for(page, "Socket.state === 'UNPAIRED_IDLE'", timeout_ms=5000)
            phone = await phone_browser.newPage()
            await phone.goto(sim.url.rstrip("/") + "/_sim/")
            await phone.waitForXPath("//button[text()='Show a new QR']", timeout=5000)
            (button,) = await phone.xpath("//button[text()='Show a new QR']")
            await button.click()  # one click on the phone page
            await wait_for(page, "Socket.state === 'UNPAIRED' && window.recorded.refs.length === 3")
            await wait_for(page, "Socket.state === 'UNPAIRED_IDLE'", timeout_ms=5000)
            await page.click("button.status")  # "Click to reload QR code" on the page itself
            await wait_for(page, "Socket.state === 'UNPAIRED' && window.recorded.refs.length === 5")
            (device,) = await client.ok("GET", "/_sim/devices")
            assert (await client.request("POST", f"/_sim/devices/{device['device']}/refresh"))[1]["refreshed"] is False
            assert (await client.request("POST", "/_sim/devices/nosuchdevice0/refresh"))[0] == 404

    with running(sim):
        run(scenario())


def test_a_device_is_listed_by_the_name_its_page_registers(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            # What whatsapp-web.js's deviceName/browserName options do once the page has loaded.
            name_it = """() => { const tick = setInterval(() => {
                if (!window.Debug || typeof window.require !== 'function') return;
                clearInterval(tick);
                const utils = window.require('WAWebMiscBrowserUtils'), info = utils.info;
                utils.info = () => Object.assign({}, info(), { os: 'Acme Bakery', name: 'FlowHQ' });
            }, 20); }"""
            page = await open_whatsapp(browser, simulator.url, before=(name_it,))
            device = await link(page, client, PHONE)
            await wait_for(page, "Socket.state === 'CONNECTED'")
            await asyncio.sleep(0.3)
            assert (await client.device(device))["name"] == "FlowHQ (Acme Bakery)"
            (phone,) = await client.ok("GET", "/_sim/phones")
            assert phone["devices"] == [{"device": device, "name": "FlowHQ (Acme Bakery)", "online": True}]

    run(scenario())


def test_an_incoming_message_fires_msg_add_with_the_whatsapp_fields(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            status, body = await client.request(
                "POST", MESSAGES, {"id": "ABCD1", "from": CUSTOMER, "body": "hello there", "name": "Ann"}
            )
            assert (status, body) == (202, {"queued": False}), "kind defaults to dm"
            await wait_for(page, "window.recorded.messages.length === 1")
            (msg,) = (await recorded(page))["messages"]
            assert abs(msg.pop("t") - time.time()) < 5
            assert msg == {
                "id": {
                    "fromMe": False,
                    "remote": wid(f"{CUSTOMER}@c.us"),
                    "id": "ABCD1",
                    "_serialized": f"false_{CUSTOMER}@c.us_ABCD1",
                },
                "from": wid(f"{CUSTOMER}@c.us"),
                "to": wid(f"{PHONE}@c.us"),
                "body": "hello there",
                "type": "chat",
                "isNewMsg": True,
                "ack": 1,
                "self": "in",
                "notifyName": "Ann",
                "star": False,
                "isForwarded": False,
                "forwardingScore": 0,
                "mentionedJidList": [],
                "groupMentions": [],
                "links": [],
            }, "no top-level fromMe: the direction is id.fromMe"
            key = f"false_{CUSTOMER}@c.us_ABCD1"
            assert await model(page, key, "[m.isStatusV3, m.isEphemeral, m.mediaObject === undefined, m.unsafe() === m]") == [
                False, False, True, True
            ]
            assert await js(page, f"r('WAWebMsgReply').canReplyMsg(Msg.get({key!r}))") is True
            chat = f"Chat.get('{CUSTOMER}@c.us')"
            assert await js(page, f"{chat}.id._serialized") == f"{CUSTOMER}@c.us"
            assert await js(page, f"[{chat}.unreadCount, {chat}.lastReceivedKey._serialized, {chat}.msgs.get({key!r}) === Msg.get({key!r})]") == [
                1, key, True
            ]
            assert await js(page, f"{chat}.formattedTitle") == f"+{CUSTOMER}"
            assert await js(page, "Chat.get('19999999999@c.us') === undefined") is True
            await wait_for(page, f"document.querySelector('#pane-side').textContent.includes('{CUSTOMER}')")
            await client.wait_until_delivered(PHONE)
            assert key in await stored_keys(page, "msgs"), "on the page's disk before it was acknowledged"

    run(scenario())


def test_a_lid_message_comes_from_the_lid_and_the_page_learns_its_number_only_when_given(simulator, tmp_path):
    other_lid = "233333333333333"

    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.post(PHONE, "lid", id="L1", pn=CUSTOMER, **{"from": LID, "body": "via lid"})
            await client.post(PHONE, "lid", id="L2", **{"from": other_lid, "body": "no number"})
            await wait_for(page, "window.recorded.messages.length === 2")
            first, second = (await recorded(page))["messages"]
            assert first["id"]["_serialized"] == f"false_{LID}@lid_L1"
            assert (first["from"], first["body"]) == (wid(f"{LID}@lid"), "via lid")
            assert second["from"] == wid(f"{other_lid}@lid")
            contact = "r('WAWebApiContact')"
            create = "r('WAWebWidFactory').createWid"
            assert await js(page, f"{contact}.getPhoneNumber({create}('{LID}@lid'))._serialized") == f"{CUSTOMER}@c.us"
            assert await js(page, f"r('WAWebLidMigrationUtils').toPn({create}('{LID}@lid'))._serialized") == (
                f"{CUSTOMER}@c.us"
            )
            assert await js(page, f"{contact}.getCurrentLid({create}('{CUSTOMER}@c.us'))._serialized") == f"{LID}@lid"
            assert await js(page, f"{contact}.getPhoneNumber({create}('{other_lid}@lid')) === undefined") is True
            assert await js(page, f"Chat.get('{LID}@lid').id.isLid()") is True
            await client.wait_until_delivered(PHONE)
            assert await stored(page, f"{LID}@lid", "contacts") == f"{CUSTOMER}@c.us"

    run(scenario())


def test_group_status_and_channel_messages_carry_the_chat_and_author_whatsapp_web_gives_them(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.post(PHONE, "group", id="G1", group=GROUP, name="Ann", **{"from": CUSTOMER, "body": "hi all"})
            await client.post(PHONE, "status", id="S1", **{"from": CUSTOMER, "body": "my day"})
            await client.post(PHONE, "newsletter", id="N1", **{"from": CHANNEL, "body": "news"})
            await wait_for(page, "window.recorded.messages.length === 3")
            group, status, channel = (await recorded(page))["messages"]

            assert group["id"] == {
                "fromMe": False, "remote": wid(f"{GROUP}@g.us"), "id": "G1", "participant": wid(f"{CUSTOMER}@c.us"),
                "_serialized": f"false_{GROUP}@g.us_G1_{CUSTOMER}@c.us",
            }
            assert (group["from"], group["author"], group["to"]) == (
                wid(f"{GROUP}@g.us"), wid(f"{CUSTOMER}@c.us"), wid(f"{PHONE}@c.us")
            )
            chat = f"Chat.get('{GROUP}@g.us')"
            getters = "r('WAWebChatGetters')"
            assert await js(page, f"[{getters}.getIsGroup({chat}), {chat}.groupMetadata.id._serialized]") == [
                True, f"{GROUP}@g.us"
            ]

            assert status["id"]["remote"] == wid("status@broadcast")
            assert status["id"]["participant"] == wid(f"{CUSTOMER}@c.us")
            assert (status["from"], status["author"]) == (wid("status@broadcast"), wid(f"{CUSTOMER}@c.us"))
            assert await model(page, status["id"]["_serialized"], "m.isStatusV3") is True
            assert await model(page, group["id"]["_serialized"], "m.isStatusV3") is False
            assert await js(page, f"{getters}.getIsBroadcast(Chat.get('status@broadcast'))") is True

            assert channel["id"]["_serialized"] == f"false_{CHANNEL}@newsletter_N1"
            assert channel["from"] == wid(f"{CHANNEL}@newsletter")
            assert await js(page, f"{getters}.getIsNewsletter(Chat.get('{CHANNEL}@newsletter'))") is True
            assert await js(page, f"r('WAWebMsgReply').canReplyMsg(Msg.get({channel['id']['_serialized']!r}))") is False

    run(scenario())


def test_an_image_arrives_with_its_caption_a_thumbnail_body_and_a_media_object(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.post(PHONE, "image", id="IMG1", caption="our menu", **{"from": CUSTOMER})
            await wait_for(page, "window.recorded.messages.length === 1")
            (msg,) = (await recorded(page))["messages"]
            assert (msg["type"], msg["caption"], msg["body"], msg["mimetype"]) == (
                "image", "our menu", THUMBNAIL, "image/jpeg"
            )
            assert msg["directPath"].startswith("/v/")
            assert all(msg[field] for field in ("mediaKey", "filehash", "size"))
            key = msg["id"]["_serialized"]
            assert await model(page, key, "m.mediaObject") == {"type": "image", "mimetype": "image/jpeg"}

    run(scenario())


def test_a_ciphertext_becomes_a_chat_message_on_the_same_model_when_it_decrypts(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await page.evaluate(WATCH_CHANGES)
            await client.post(PHONE, "ciphertext", id="C1", decrypt_ms=400, **{"from": CUSTOMER, "body": "at last"})
            await wait_for(page, "window.recorded.messages.length === 1")
            (msg,) = (await recorded(page))["messages"]
            assert (msg["type"], msg["body"]) == ("ciphertext", "")
            assert "decrypt" not in msg, "how it decrypts is the simulator's, not the model's"
            key = msg["id"]["_serialized"]
            await wait_for(page, "window.changes.length >= 1")
            assert await page.evaluate("() => window.changes") == [["change:type", "C1", "chat", "ciphertext"]]
            assert await model(page, key, "[m.type, m.body]") == ["chat", "at last"]
            assert len((await recorded(page))["messages"]) == 1, "no second add: the same model changed"
            await asyncio.sleep(0.2)
            assert (await stored(page, key, "msgs"))["type"] == "chat"

    run(scenario())


def test_a_revoke_empties_the_message_and_an_edit_changes_its_body_or_caption(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await page.evaluate(WATCH_CHANGES)
            await client.post(PHONE, id="R1", **{"from": CUSTOMER, "body": "oops"})
            await client.post(PHONE, id="E1", **{"from": CUSTOMER, "body": "typo"})
            await client.post(PHONE, "image", id="I1", caption="old caption", **{"from": CUSTOMER})
            await client.post(PHONE, "group", id="GE1", group=GROUP, **{"from": CUSTOMER, "body": "in group"})
            await wait_for(page, "window.recorded.messages.length === 4")
            await client.post(PHONE, "revoke", ref="R1", **{"from": CUSTOMER})
            await client.post(PHONE, "edit", id="EDIT1", ref="E1", **{"from": CUSTOMER, "body": "fixed"})
            await client.post(PHONE, "edit", id="EDIT2", ref="I1", **{"from": CUSTOMER, "body": "new caption"})
            await client.post(PHONE, "edit", id="EDIT3", ref="GE1", group=GROUP, **{"from": CUSTOMER, "body": "edited"})
            await wait_for(page, "window.changes.length === 5")
            assert await page.evaluate("() => window.changes") == [
                ["change:type", "R1", "revoked", "chat"],
                ["change:body", "R1", "", "oops"],
                ["change:body", "E1", "fixed", "typo"],
                ["change:caption", "I1", "new caption", "old caption"],
                ["change:body", "GE1", "edited", "in group"],
            ]
            assert await model(page, f"false_{CUSTOMER}@c.us_R1", "[m.type, m.body]") == ["revoked", ""]
            assert await model(page, f"false_{CUSTOMER}@c.us_E1", "[m.body, m.latestEditMsgKey.id, m.latestEditMsgKey.fromMe]") == [
                "fixed", "EDIT1", False
            ]
            assert await model(page, f"false_{CUSTOMER}@c.us_I1", "[m.body === m.body.trim() && m.type, m.caption]") == [
                "image", "new caption"
            ]
            assert await model(page, f"false_{GROUP}@g.us_GE1_{CUSTOMER}@c.us", "m.latestEditMsgKey._serialized") == (
                f"false_{GROUP}@g.us_EDIT3_{CUSTOMER}@c.us"
            )
            assert len((await recorded(page))["messages"]) == 4, "revokes and edits add no message"
            await client.wait_until_delivered(PHONE)

    run(scenario())


def test_a_reaction_goes_to_the_reaction_table_and_adds_no_message(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            # As whatsapp-web.js hooks reactions: it wraps reactionTableMode.bulkUpsert.
            await page.evaluate(
                """() => {
                  window.reactions = [];
                  const module = window.require('WAWebAddonReactionTableMode').reactionTableMode;
                  const original = module.bulkUpsert;
                  module.bulkUpsert = (...args) => {
                    window.reactions.push(...args[0].map((row) => ({
                      id: row.id._serialized, parent: row.reactionParentKey._serialized, text: row.reactionText,
                      sender: (row.author ?? row.from)._serialized, timestamp: row.reactionTimestamp,
                    })));
                    return original.apply(module, args);
                  };
                }"""
            )
            await client.post(PHONE, id="P1", **{"from": CUSTOMER, "body": "like this"})
            await wait_for(page, "window.recorded.messages.length === 1")
            await client.post(PHONE, "reaction", id="RX1", ref="P1", **{"from": CUSTOMER, "body": "❤️"})
            await client.post(PHONE, "reaction", ref="P1", **{"from": CUSTOMER})
            await wait_for(page, "window.reactions.length === 2")
            first, second = await page.evaluate("() => window.reactions")
            assert abs(first.pop("timestamp") / 1000 - time.time()) < 5
            assert first == {
                "id": f"false_{CUSTOMER}@c.us_RX1", "parent": f"false_{CUSTOMER}@c.us_P1", "text": "❤️",
                "sender": f"{CUSTOMER}@c.us",
            }
            assert second["text"] == "👍", "the default reaction"
            assert second["id"] != first["id"], "the service gives a reaction without an id one"
            await client.wait_until_delivered(PHONE)
            assert len((await recorded(page))["messages"]) == 1, "a reaction is no message"
            assert await js(page, "Msg.getModelsArray().length") == 1

    run(scenario())


def test_a_message_typed_on_the_phone_is_from_me_and_from_the_own_number(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.post(PHONE, "own", id="OWN1", to=CUSTOMER, body="typed on the phone")
            await wait_for(page, "window.recorded.messages.length === 1")
            (msg,) = (await recorded(page))["messages"]
            assert msg["id"]["fromMe"] is True
            assert msg["id"]["_serialized"] == f"true_{CUSTOMER}@c.us_OWN1"
            assert (msg["from"], msg["to"], msg["self"], msg["body"]) == (
                wid(f"{PHONE}@c.us"), wid(f"{CUSTOMER}@c.us"), "out", "typed on the phone"
            )
            assert "fromMe" not in msg
            assert await js(page, f"Chat.get('{CUSTOMER}@c.us').unreadCount") == 0
            await client.wait_until_delivered(PHONE)
            assert await client.ok("GET", OUTBOX) == [], "what the phone typed is not the device's send"

    run(scenario())


def test_messages_posted_while_the_browser_is_closed_arrive_in_order_on_the_next_start(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                await link(await open_whatsapp(browser, simulator.url), client, PHONE)
            for n in range(1, 4):
                status, body = await client.request(
                    "POST", MESSAGES, {"id": f"M{n}", "from": CUSTOMER, "body": f"#{n}"}
                )
                assert (status, body) == (202, {"queued": True})
            assert (await client.phone(PHONE))["queued"] == 3
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "window.recorded.messages.length === 3")
                assert [m["body"] for m in (await recorded(page))["messages"]] == ["#1", "#2", "#3"]
                await client.wait_until_delivered(PHONE)

    run(scenario())


def test_received_and_sent_messages_are_kept_as_history_across_a_restart(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                for n in (1, 2):
                    await client.post(PHONE, id=f"H{n}", **{"from": CUSTOMER, "body": f"#{n}"})
                await client.post(PHONE, "lid", id="H3", pn=CUSTOMER, **{"from": LID, "body": "#3"})
                await wait_for(page, "window.recorded.messages.length === 3")
                sent = await send(page, f"{CUSTOMER}@c.us", "#4")
                assert (await send_result(page, sent["key"]))["result"]["messageSendResult"] == "OK"
                # Acknowledged (so no longer queued) only once on the page's disk.
                await client.wait_until_delivered(PHONE)
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                history = await js(
                    page, "Msg.getModelsArray().map(m => [m.id.id, m.body, m.isNewMsg, m.id.fromMe, m.ack])"
                )
                assert history == [
                    ["H1", "#1", False, False, 1], ["H2", "#2", False, False, 1], ["H3", "#3", False, False, 1],
                    [sent["id"], "#4", False, True, 1],
                ]
                assert await js(page, f"Chat.get('{CUSTOMER}@c.us').msgs.length") == 3
                assert await js(page, f"r('WAWebApiContact').getPhoneNumber('{LID}@lid')._serialized") == (
                    f"{CUSTOMER}@c.us"
                ), "what the page learnt about a LID is kept too"
                await asyncio.sleep(0.3)
                assert (await recorded(page))["messages"] == [], "history is not announced as new"
                assert len(await client.ok("GET", OUTBOX)) == 1, "nothing was sent again"

    run(scenario())


def test_get_messages_by_id_finds_messages_in_memory_and_in_the_pages_storage(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.post(PHONE, id="Q1", **{"from": CUSTOMER, "body": "first"})
            await wait_for(page, "window.recorded.messages.length === 1")
            sent = await send(page, f"{CUSTOMER}@c.us", "reply")
            await send_result(page, sent["key"])
            await client.wait_until_delivered(PHONE)
            received = f"false_{CUSTOMER}@c.us_Q1"
            found = await js(
                page,
                f"Msg.getMessagesById([{received!r}, {sent['key']!r}, 'false_{CUSTOMER}@c.us_NOPE'])"
                ".then(({ messages }) => messages.map(m => [m.id._serialized, m.body]))",
            )
            assert found == [[received, "first"], [sent["key"], "reply"]]
            await js(page, f"Msg.remove(Msg.get({received!r})) && true")
            assert await js(page, f"Msg.get({received!r}) === undefined") is True
            again = await js(
                page, f"Msg.getMessagesById([{received!r}]).then(({{ messages }}) => messages.map(m => m.body))"
            )
            assert again == ["first"], "read back from the page's storage"
            assert await js(page, "Msg.modelClass === Msg.get(" + repr(sent["key"]) + ").constructor") is True

    run(scenario())


def test_a_message_the_page_did_not_acknowledge_comes_again_after_a_reload_as_one_model(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await page.evaluate(NEVER_ACKNOWLEDGE)
            await client.post(PHONE, id="U1", **{"from": CUSTOMER, "body": "x"})
            await wait_for(page, "window.recorded.messages.length === 1")
            await asyncio.sleep(0.4)
            assert (await client.phone(PHONE))["queued"] == 1, "it leaves the queue only once acknowledged"
            await page.reload()
            await wait_for(page, "Socket.state === 'CONNECTED'")
            await client.wait_until_delivered(PHONE)
            assert (await recorded(page))["messages"] == [], "already on the page's disk: no second add"
            assert await js(page, "Msg.getModelsArray().map(m => [m.id.id, m.isNewMsg])") == [["U1", False]]

    run(scenario())


def test_the_same_message_id_posted_twice_reaches_the_page_twice_but_msg_keeps_one_model(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            for _ in range(2):
                assert await client.post(PHONE, id="DUP", **{"from": CUSTOMER, "body": "x"}) == {"queued": False}
            await client.wait_until_delivered(PHONE)
            ids = [m["id"]["_serialized"] for m in (await recorded(page))["messages"]]
            assert ids == [f"false_{CUSTOMER}@c.us_DUP"]
            assert await js(page, "Msg.getModelsArray().length") == 1

    run(scenario())


def test_a_browser_killed_right_after_linking_comes_back_linked(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                # No graceful close: the whole Chromium dies at once, as with kill -9 of its worker.
                for proc in psutil.Process(browser.process.pid).children(recursive=True):
                    proc.kill()
                browser.process.kill()
                await asyncio.to_thread(browser.process.wait, 10)
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert await js(page, "Me.getMaybeMePnUser()._serialized") == f"{PHONE}@c.us"

    run(scenario())


def test_add_and_send_msg_to_chat_lands_in_the_outbox_and_in_msg(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await page.evaluate(WATCH_CHANGES)
            assert await client.ok("GET", OUTBOX) == []
            sent = await send(page, f"{CUSTOMER}@c.us", "Thanks, we are open 9-5")
            assert re.fullmatch(r"3EB0[0-9A-F]{18}", sent["id"]), "MsgKey.newId()"
            assert sent["key"] == f"true_{CUSTOMER}@c.us_{sent['id']}"
            assert (await send_result(page, sent["key"]))["result"]["messageSendResult"] == "OK"
            (entry,) = await client.ok("GET", OUTBOX)
            assert (entry["id"], entry["to"], entry["chat"], entry["body"]) == (
                sent["id"], CUSTOMER, f"{CUSTOMER}@c.us", "Thanks, we are open 9-5"
            )
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["sent_at"])
            (own,) = (await recorded(page))["messages"]
            assert own["id"]["fromMe"] is True, "like WhatsApp Web, the sent message is added to Msg"
            assert own["id"]["_serialized"] == sent["key"]
            assert (own["from"], own["to"], own["self"], own["local"], own["isNewMsg"]) == (
                wid(f"{PHONE}@c.us"), wid(f"{CUSTOMER}@c.us"), "out", True, True
            )
            assert "fromMe" not in own
            assert own["ack"] == 0, "added before the service took it"
            assert await model(page, sent["key"], "m.ack") == 1
            assert await page.evaluate("() => window.changes") == [["change:ack", sent["id"], 1, 0]]
            assert await js(page, f"Chat.get('{CUSTOMER}@c.us').msgs.get({sent['key']!r}) !== undefined") is True
            assert (await stored(page, sent["key"], "msgs"))["ack"] == 1

            group = await send(page, f"{GROUP}@g.us", "to the group")
            assert group["key"] == f"true_{GROUP}@g.us_{group['id']}_{PHONE}@c.us", "a group key names us as participant"
            await send_result(page, group["key"])
            assert [m["chat"] for m in await client.ok("GET", OUTBOX)] == [f"{CUSTOMER}@c.us", f"{GROUP}@g.us"]

            assert await client.ok("DELETE", OUTBOX) == {"cleared": True}
            assert await client.ok("GET", OUTBOX) == []

    run(scenario())


def test_add_and_send_refuses_a_key_the_page_already_holds_but_the_service_delivers_every_send(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            first = await send(page, f"{CUSTOMER}@c.us", "once", id="3EB0CAFE0000000001")
            assert (await send_result(page, first["key"]))["result"]["messageSendResult"] == "OK"
            again = await send(page, f"{CUSTOMER}@c.us", "once", id="3EB0CAFE0000000001")
            assert "already exists" in again["error"], "both promises reject"
            assert len((await recorded(page))["messages"]) == 1
            await client.post(PHONE, id="IN1", **{"from": CUSTOMER, "body": "x"})
            await wait_for(page, "window.recorded.messages.length === 2")
            clash = await send(page, f"{CUSTOMER}@c.us", "x", id="IN1")
            assert "error" not in clash, "a received message's key is not ours: fromMe differs"
            await send_result(page, clash["key"])

            other = await send(page, "15558880000@c.us", "once", id="3EB0CAFE0000000001")
            await send_result(page, other["key"])
            outbox = [(m["id"], m["chat"]) for m in await client.ok("GET", OUTBOX)]
            assert outbox == [
                ("3EB0CAFE0000000001", f"{CUSTOMER}@c.us"),
                ("IN1", f"{CUSTOMER}@c.us"),
                ("3EB0CAFE0000000001", "15558880000@c.us"),
            ], "the same id in another chat is another message, and it is delivered"

    run(scenario())


def test_a_message_added_while_disconnected_is_sent_when_the_page_reconnects(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.ok("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 1000})
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            sent = await send(page, f"{CUSTOMER}@c.us", "while offline")
            assert "error" not in sent, "the message is added and stored: it waits"
            assert await model(page, sent["key"], "m.ack") == 0
            assert await client.ok("GET", OUTBOX) == []
            assert (await send_result(page, sent["key"]))["result"]["messageSendResult"] == "OK"
            assert await state(page) == "CONNECTED"
            assert [m["body"] for m in await client.ok("GET", OUTBOX)] == ["while offline"]
            assert await model(page, sent["key"], "m.ack") == 1

    run(scenario())


def test_a_stored_message_never_acknowledged_is_resent_after_a_restart_without_doubling(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url, before=(LOSE_SEND_ACKS,))
                await link(page, client, PHONE)
                sent = await send(page, f"{CUSTOMER}@c.us", "did it go?")
                for _ in range(100):
                    if await client.ok("GET", OUTBOX):
                        break
                    await asyncio.sleep(0.05)
                assert len(await client.ok("GET", OUTBOX)) == 1, "the service took it"
                await asyncio.sleep(0.3)
                assert await model(page, sent["key"], "m.ack") == 0, "but the page never heard"
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                await wait_for(page, f"Msg.get({sent['key']!r}).ack === 1")
                outbox = await client.ok("GET", OUTBOX)
                assert [(m["id"], m["body"]) for m in outbox] == [(sent["id"], "did it go?")], (
                    "the page's retry is recognised by its id"
                )
                await asyncio.sleep(0.2)
                assert (await stored(page, sent["key"], "msgs"))["ack"] == 1
                assert (await recorded(page))["messages"] == []

    run(scenario())


def test_a_loud_drop_times_out_and_the_page_retries_by_itself_until_it_is_connected(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await page.evaluate("() => { window.sameDocument = true; }")
            await client.ok("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 1000, "silent": False})
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            assert (await client.post(PHONE, id="D1", **{"from": CUSTOMER, "body": "during"}))["queued"] is True
            await wait_for(page, "Socket.state === 'CONNECTED'", timeout_ms=6000)
            assert await js(page, "window.sameDocument") is True, "no reload"
            states = (await recorded(page))["states"]
            assert states[:5] == ["OPENING", "UNPAIRED", "PAIRING", "CONNECTED", "TIMEOUT"]
            retries = states[5:-2]
            assert retries, "the first retries come while the drop lasts"
            assert retries == ["OPENING", "TIMEOUT"] * (len(retries) // 2), "each retry during the drop is refused"
            assert states[-2:] == ["OPENING", "CONNECTED"]
            await wait_for(page, "window.recorded.messages.length === 1")

    run(scenario())


def test_a_reload_during_a_loud_drop_ends_in_timeout_and_one_after_it_connects(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await client.ok("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 2000, "silent": False})
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            await page.reload()  # during the drop
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            assert (await recorded(page))["states"][:2] == ["OPENING", "TIMEOUT"]
            assert await page.querySelector("#pane-side") is None
            assert "not connected" in await page.Jeval("#app", "el => el.textContent")
            await asyncio.sleep(0.5)
            assert "CONNECTED" not in (await recorded(page))["states"]

            await asyncio.sleep(1.6)
            await page.reload()  # after it
            await wait_for(page, "Socket.state === 'CONNECTED'")
            assert (await recorded(page))["states"] == ["OPENING", "CONNECTED"]
            await page.waitForSelector("#pane-side")

    run(scenario())


def test_a_silent_drop_flips_the_state_to_timeout_without_an_event(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            await wait_for(page, "Socket.hasSynced")
            await client.ok("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 2500, "silent": True})
            status, body = await client.request(
                "POST", MESSAGES, {"id": "S1", "from": CUSTOMER, "body": "lost?"}
            )
            assert (status, body) == (202, {"queued": True}), "a silenced device gets nothing"
            await wait_for(page, "Socket.state === 'TIMEOUT'", timeout_ms=PING_TIMEOUT_MS * 4)
            events = await recorded(page)
            assert events["states"] == ["OPENING", "UNPAIRED", "PAIRING", "CONNECTED"], (
                "no change:state for the silent death"
            )
            assert events["messages"] == []

            # Its own retries get no answer during the drop either; one after it connects.
            await wait_for(page, "Socket.state === 'CONNECTED'", timeout_ms=8000)
            await wait_for(page, "window.recorded.messages.length === 1")
            states = (await recorded(page))["states"]
            assert "TIMEOUT" not in states, "every timeout of the silent drop was silent"
            assert states[4:] == ["OPENING"] * (len(states) - 5) + ["CONNECTED"]

    run(scenario())


def test_a_phone_logout_fires_logout_from_bridge_clears_storage_and_reloads_to_a_new_qr(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                browser_id = await stored(page, "WABrowserId")
                await client.post(PHONE, "lid", id="L1", pn=CUSTOMER, **{"from": LID, "body": "x"})
                await wait_for(page, "window.recorded.messages.length === 1")
                await client.wait_until_delivered(PHONE)
                assert await client.ok("POST", f"/_sim/phones/{PHONE}/logout") == {"phone": PHONE, "logged_out": True}
                await wait_for(page, "location.search === '?post_logout=1' && Socket.state === 'UNPAIRED' && Conn.ref")
                assert (await recorded(page))["logouts"] == ["logout_from_bridge"]
                assert await js(page, "Me.getMaybeMePnUser() === undefined") is True
                assert await js(page, "Msg.getModelsArray().length") == 0
                assert await stored(page, "WASecretBundle") is None
                assert await stored(page, "last-wid-md") is None
                assert await stored_keys(page, "msgs") == []
                assert await stored_keys(page, "contacts") == []
                assert await stored(page, "WABrowserId") == browser_id, "logout forgets the link, not the browser"
                await page.waitForSelector("div[data-ref]")
                assert await page.querySelector("#pane-side") is None
                status, _ = await client.request("POST", f"/_sim/phones/{PHONE}/logout")
                assert status == 404, "the phone has no linked device any more"
                assert page.errors == []
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
                await page.waitForSelector("div[data-ref]")

    run(scenario())


def test_socket_logout_fires_cmd_logout_unlinks_the_device_and_reloads_to_a_new_qr(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, page):
            device = await stored(page, "WABrowserId")
            await js(page, "(Socket.logout(), true)")
            await wait_for(page, "location.search === '?post_logout=1' && Socket.state === 'UNPAIRED' && Conn.ref")
            assert (await recorded(page))["logouts"] == ["logout"]
            assert await stored(page, "WASecretBundle") is None
            assert (await client.phone(PHONE))["device"] is None
            assert (await client.device(device))["phone"] is None
            await link(page, client, CUSTOMER)
            assert (await client.phone(CUSTOMER))["device"] == device, "the same browser links again"

    run(scenario())


def test_a_logout_while_the_browser_is_closed_arrives_at_its_next_start(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                await link(await open_whatsapp(browser, simulator.url), client, PHONE)
            await client.ok("POST", f"/_sim/phones/{PHONE}/logout")
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(
                    page, "location.search === '?post_logout=1' && Socket.state === 'UNPAIRED' && Conn.ref"
                )
                assert (await recorded(page))["logouts"] == ["logout_from_bridge"]
                assert await stored(page, "WASecretBundle") is None

    run(scenario())


def test_a_second_browser_linked_to_the_same_phone_keeps_the_first_connected(simulator, tmp_path):
    async def scenario():
        async with (
            fresh(simulator) as client,
            chromium(tmp_path / "first") as first_browser,
            chromium(tmp_path / "second") as second_browser,
        ):
            first = await open_whatsapp(first_browser, simulator.url)
            first_device = await link(first, client, PHONE)
            second = await open_whatsapp(second_browser, simulator.url)
            second_device = await link(second, client, PHONE)
            await asyncio.sleep(0.5)
            assert (await recorded(first))["logouts"] == [], "linking one device never unlinks another"
            assert (await client.device(first_device))["phone"] == PHONE
            assert (await client.device(second_device))["phone"] == PHONE
            assert (await state(first), await state(second)) == ("CONNECTED", "CONNECTED")
            await client.ok("POST", f"/_sim/phones/{PHONE}/logout", {"device": first_device})
            await wait_for(first, "location.search === '?post_logout=1' && Socket.state === 'UNPAIRED'")
            assert (await recorded(first))["logouts"] == ["logout_from_bridge"]
            assert await state(second) == "CONNECTED", "logging one device out keeps the other"

    run(scenario())


def test_a_second_page_of_the_same_profile_takes_over_and_takeover_takes_it_back(simulator, tmp_path):
    async def scenario():
        async with linked_page(simulator, tmp_path) as (client, first):
            browser = first.browser
            second = await browser.newPage()
            second.errors = []
            second.on("pageerror", second.errors.append)
            await second.goto(simulator.url)
            await wait_for(second, "Socket.state === 'CONNECTED'")
            await wait_for(first, "Socket.state === 'CONFLICT'")
            assert (await recorded(first))["states"][-1] == "CONFLICT"
            await js(first, "(Socket.takeover(), true)")
            await wait_for(first, "Socket.state === 'CONNECTED'")
            await wait_for(second, "Socket.state === 'CONFLICT'")
            await client.post(PHONE, id="T1", **{"from": CUSTOMER, "body": "to the page in use"})
            await wait_for(first, "Msg.get('false_15559990000@c.us_T1') !== undefined")
            assert await js(second, "Msg.get('false_15559990000@c.us_T1') === undefined") is True
            assert second.errors == []
            await second.close()

    run(scenario())


def test_a_stale_or_unknown_qr_is_refused(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
            stale = await qr_payload(page)
            await wait_for(page, f"Conn.ref !== {stale.split(',')[0]!r}", timeout_ms=QR_ROTATE_MS * 3)
            status, body = await client.request("POST", "/_sim/scan", {"qr": stale, "phone": PHONE})
            assert status == 410, body
            assert "expired" in body["error"]
            keys = ",".join(stale.split(",")[1:])
            status, body = await client.request(
                "POST", "/_sim/scan", {"qr": f"2@never-issued,{keys}", "phone": PHONE}
            )
            assert status == 404, body
            current = (await qr_payload(page)).split(",")
            for bad in (current[:4], [*current[:4], "2"], [current[0], current[2], current[1], *current[3:]]):
                status, body = await client.request("POST", "/_sim/scan", {"qr": ",".join(bad), "phone": PHONE})
                assert status == 400, (bad, body)
            assert await state(page) == "UNPAIRED"

    run(scenario())


def test_the_control_api_answers_bad_input_with_json_4xx(simulator):
    async def scenario():
        async with fresh(simulator) as client:
            cases = [
                ("POST", "/_sim/scan", "{not json", 400),
                ("POST", "/_sim/scan", "[1, 2]", 400),
                ("POST", "/_sim/scan", '{"phone": "15550001111"}', 400),
                ("POST", "/_sim/scan", '{"qr": 5, "phone": "15550001111"}', 400),
                ("POST", "/_sim/scan", '{"qr": "only-a-ref", "phone": "15550001111"}', 400),
                ("POST", "/_sim/scan", '{"qr": "a,b,c,d,1", "phone": "not-digits"}', 400),
                ("POST", "/_sim/scan", '{"qr": "a,b,c,d", "phone": "15550001111"}', 400),
                ("POST", "/_sim/scan", '{"qr": "a,b,c,d,1", "phone": "15550001111", "name": 7}', 400),
                ("POST", MESSAGES, "", 400),
                ("POST", MESSAGES, "null", 400),
                ("POST", MESSAGES, '{"id": "1", "from": "15559990000"}', 400),
                ("POST", MESSAGES, '{"id": "", "from": "15559990000", "body": "x"}', 400),
                ("POST", MESSAGES, '{"id": "1", "from": "ann", "body": "x"}', 400),
                ("POST", MESSAGES, '{"kind": 5, "id": "1", "from": "15559990000", "body": "x"}', 400),
                ("POST", "/_sim/phones/abc/messages", '{"id": "1", "from": "15559990000", "body": "x"}', 400),
                ("GET", f"/_sim/phones/{PHONE}/outbox", None, 404),
                ("DELETE", f"/_sim/phones/{PHONE}/outbox", None, 404),
                ("GET", "/_sim/phones/abc/outbox", None, 400),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", "{}", 404),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"duration_ms": "soon"}', 400),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"duration_ms": -1}', 400),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"duration_ms": 86400001}', 400),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"silent": "yes"}', 400),
                ("POST", f"/_sim/phones/{PHONE}/logout", None, 404),
                ("GET", "/_sim/nothing-here", None, 404),
                ("GET", "/_sim/ws", None, 400),
                ("GET", "/_sim/ws?device=x", None, 400),
            ]
            for method, path, raw, expected in cases:
                status, body = await client.request(method, path, raw=raw)
                assert status == expected, (method, path, raw, status, body)
                assert isinstance(body["error"], str), (method, path, body)
                assert body["error"], (method, path, body)

    run(scenario())


def test_the_control_api_checks_each_kinds_fields_and_names_the_wrong_one(simulator):
    valid = {
        "dm": {"from": CUSTOMER, "body": "x"},
        "lid": {"from": LID, "body": "x", "pn": CUSTOMER},
        "group": {"group": GROUP, "from": CUSTOMER, "body": "x"},
        "status": {"from": CUSTOMER, "body": "x"},
        "newsletter": {"from": CHANNEL, "body": "x"},
        "image": {"from": CUSTOMER, "caption": "x"},
        "ciphertext": {"from": CUSTOMER, "body": "x", "decrypt_ms": 100},
        "revoke": {"ref": "R1", "from": CUSTOMER},
        "edit": {"ref": "R1", "from": CUSTOMER, "body": "x"},
        "reaction": {"ref": "R1", "from": CUSTOMER},
        "own": {"to": CUSTOMER, "body": "x"},
    }
    wrong = [
        ("sms", {"from": CUSTOMER, "body": "x"}, "kind"),
        ("dm", {"from": CUSTOMER}, "body"),
        ("dm", {"from": CUSTOMER, "body": 1}, "body"),
        ("dm", {"from": "+1 555", "body": "x"}, "from"),
        ("lid", {"body": "x"}, "from"),
        ("lid", {"from": LID, "body": "x", "pn": 1}, "pn"),
        ("group", {"from": CUSTOMER, "body": "x"}, "group"),
        ("status", {"body": "x"}, "from"),
        ("newsletter", {"from": "news", "body": "x"}, "from"),
        ("image", {"from": CUSTOMER, "caption": None}, "caption"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": 1.5}, "decrypt_ms"),
        ("ciphertext", {"from": CUSTOMER, "body": "x", "decrypt_ms": 3_600_000}, "decrypt_ms"),
        ("revoke", {"from": CUSTOMER}, "ref"),
        ("revoke", {"ref": "R 1", "from": CUSTOMER}, "ref"),
        ("edit", {"ref": "R1", "from": CUSTOMER}, "body"),
        ("reaction", {"ref": "R1", "from": CUSTOMER, "body": ["👍"]}, "body"),
        ("reaction", {"ref": "R1"}, "from"),
        ("own", {"body": "x"}, "to"),
        ("own", {"to": CUSTOMER, "body": "x", "name": False}, "name"),
    ]

    async def scenario():
        async with fresh(simulator) as client:
            for kind, fields, field in wrong:
                status, body = await client.request("POST", MESSAGES, {"kind": kind, "id": "M1", **fields})
                assert status == 400, (kind, fields, status, body)
                assert field in body["error"], (kind, fields, body)
            assert await client.ok("GET", "/_sim/phones") == [], "nothing was queued"
            for kind, fields in valid.items():
                assert await client.post(PHONE, kind, id=f"OK-{kind}", **fields) == {"queued": True}
            assert (await client.phone(PHONE))["queued"] == len(valid)
            assert await client.post(PHONE, "reaction", ref="R1", **{"from": CUSTOMER}) == {"queued": True}, (
                "an action's id is optional"
            )
            status, body = await client.request("POST", MESSAGES, {"kind": "dm", **valid["dm"]})
            assert (status, body) == (400, {"error": "missing field 'id'"})

    run(scenario())


def test_the_phone_page_lists_devices_and_links_one(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
            phone_page = await browser.newPage()
            await phone_page.goto(simulator.url + "_sim/")
            await phone_page.type("#link-phone", PHONE)
            await phone_page.waitForSelector("#devices button")
            await phone_page.evaluate("() => document.querySelector('#devices button').click()")
            await wait_for(page, "Socket.state === 'CONNECTED'")
            assert (await client.ok("GET", "/_sim/phones"))[0]["phone"] == PHONE
            await phone_page.close()

    run(scenario())


def test_a_state_file_keeps_links_across_a_simulator_restart(tmp_path):
    port = free_port()
    state_file = tmp_path / "sim-state.json"
    profile = tmp_path / "profile"

    def start() -> Simulator:
        return Simulator(tmp_path / "simulator.log", port=port, state_file=state_file).start()

    async def scenario():
        sim = start()
        try:
            async with sim_client(sim.url) as client, chromium(profile) as browser:
                page = await open_whatsapp(browser, sim.url)
                await link(page, client, PHONE)
                await client.post(PHONE, id="K1", **{"from": CUSTOMER, "body": "x"})
                await wait_for(page, "window.recorded.messages.length === 1")
                # The page acknowledges once the message is on its disk; stopping before the
                # acknowledgement arrives would rightly get the message redelivered.
                await client.wait_until_delivered(PHONE)
                sim.stop()
                await wait_for(page, "Socket.state === 'TIMEOUT'")
                assert (await recorded(page))["states"][-1] == "TIMEOUT"
                sim = start()
                await page.reload()
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert (await recorded(page))["messages"] == [], "the acknowledged message is not redelivered"
        finally:
            sim.stop()
        saved = json.loads(state_file.read_text())
        assert saved["version"] == 3
        assert len(saved["phones"][0]["devices"]) == 1
        assert "Traceback" not in (tmp_path / "simulator.log").read_text()

    run(scenario())


def test_a_state_file_of_version_1_restores(tmp_path):
    state_file = tmp_path / "sim-state.json"
    state_file.write_text(json.dumps({
        "version": 1,
        "next_seq": 3,
        "phones": [{
            "phone": PHONE, "device": "0123456789abcdef0123456789abcdef", "pushname": "Shop",
            "queue": [{"seq": 2, "id": "OLD1", "sender": CUSTOMER, "body": "waiting", "name": "Ann", "t": 1_700_000_000}],
            "outbox": [{"id": "3EB0CAFE", "to": CUSTOMER, "body": "sent", "sent_at_ms": 1_700_000_000_000}],
        }],
    }))
    sim = Simulator(tmp_path / "simulator.log", state_file=state_file)

    async def scenario():
        async with sim_client(sim.url) as client:
            phone = await client.phone(PHONE)
            assert (phone["device"], phone["pushname"], phone["queued"], phone["outbox"], phone["online"]) == (
                "0123456789abcdef0123456789abcdef", "Shop", 1, 1, False
            )
            assert await client.ok("GET", OUTBOX) == [{
                "id": "3EB0CAFE", "to": CUSTOMER, "chat": f"{CUSTOMER}@c.us", "body": "sent",
                "sent_at": "2023-11-14T22:13:20.000Z", "resent": False,
            }]
            (device,) = await client.ok("GET", "/_sim/devices")
            assert (device["device"], device["phone"], device["online"]) == (phone["device"], PHONE, False)
            await client.ok("DELETE", OUTBOX)

    with running(sim):
        run(scenario())
    saved = json.loads(state_file.read_text())
    assert saved["version"] == 3, "saved again in the current version"
    assert saved["phones"][0]["queue"][0]["kind"] == "dm"


@pytest.mark.parametrize("content", ["{half a file", json.dumps({"version": 99, "phones": []})])
def test_a_state_file_that_cannot_be_read_makes_the_simulator_exit_2(tmp_path, content):
    state_file = tmp_path / "sim-state.json"
    state_file.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "--port", "0", "--state-file", str(state_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot load --state-file" in done.stderr
    assert state_file.read_text() == content, "the file is left as it was"


def test_without_module_leaves_the_module_out_of_the_page(tmp_path):
    sim = Simulator(tmp_path / "simulator.log", extra_args=(
        "--without-module", "WAWebAltDeviceLinkingApi", "--without-module", "WAWebLinkPreviewChatAction"
    ))

    async def scenario():
        async with chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, sim.url)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
            for gone in ("WAWebAltDeviceLinkingApi", "WAWebLinkPreviewChatAction"):
                error = await js(page, f"(() => {{ try {{ r({gone!r}); return null; }} catch (e) {{ return e.message; }} }})()")
                assert error == f'Requiring unknown module "{gone}"'
            assert await js(page, "typeof r('WALinkify').findLink") == "function", "the others stay"
            assert page.errors == []

    with running(sim):
        run(scenario())


def test_wa_version_sets_debug_version(tmp_path):
    sim = Simulator(tmp_path / "simulator.log", extra_args=("--wa-version", "2.3000.1023456789"))

    async def scenario():
        async with chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, sim.url)
            await wait_for(page, "window.Debug && window.Debug.VERSION")
            assert await js(page, "window.Debug.VERSION") == "2.3000.1023456789"

    with running(sim):
        run(scenario())


def test_the_tls_listener_serves_the_page(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    tls_port = free_port()
    sim = Simulator(tmp_path / "simulator.log", extra_args=(
        "--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key)
    ))
    https = f"https://127.0.0.1:{tls_port}/"

    async def scenario():
        context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session, session.get(https, ssl=context) as response:
            assert response.status == 200
            assert 'src="/wa.js"' in await response.text()
        async with sim_client(sim.url) as client, chromium(tmp_path / "profile", ("--ignore-certificate-errors",)) as browser:
            page = await open_whatsapp(browser, https)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")  # over wss
            assert await js(page, "location.protocol") == "https:"
            await link(page, client, PHONE)
            assert page.errors == []

    with running(sim):
        assert f"simulator listening on {https} (TLS)" in sim.log_path.read_text()
        run(scenario())
