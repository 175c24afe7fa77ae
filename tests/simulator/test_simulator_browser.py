"""The simulator end to end: a real simulator process and real headless Chromium, driven only
through the page contract a bot uses on WhatsApp Web (window.require modules, data-ref, #pane-side)
and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import psutil
import pytest

from tests.harness import free_port
from tests.simulator.conftest import (
    PING_TIMEOUT_MS,
    QR_ROTATE_MS,
    RECORDER,
    SimClient,
    Simulator,
    chromium,
    js,
    link,
    open_whatsapp,
    qr_payload,
    sim_client,
    state,
    stored,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    # pyppeteer 2.0 drives websockets 10 with an argument it deprecated.
    pytest.mark.filterwarnings("ignore:remove loop argument:DeprecationWarning"),
]

PHONE = "15550001111"
CUSTOMER = "15559990000"


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 90))


@contextlib.asynccontextmanager
async def fresh(simulator: Simulator) -> AsyncIterator[SimClient]:
    async with sim_client(simulator.url) as client:
        await client.ok("POST", "/_sim/reset")
        yield client


async def recorded(page: Any) -> dict[str, Any]:
    return await page.evaluate("() => window.recorded")


def test_the_qr_ref_is_exposed_in_conn_and_data_ref_and_rotates(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
            first = await qr_payload(page)
            ref = first.split(",")[0]
            assert re.fullmatch(r"2@[A-Za-z0-9_-]+", ref)
            assert await page.Jeval("div[data-ref]", "el => el.getAttribute('data-ref')") == first
            assert await page.querySelector("div[data-ref] canvas[aria-label='Scan me!']") is not None
            assert await page.querySelector("#pane-side") is None

            (device,) = await client.ok("GET", "/_sim/devices")
            assert device["qr"] == first
            assert device["ref"] == ref
            assert device["online"] is True
            assert device["phone"] is None
            assert device["state"] == "UNPAIRED"
            assert await js(page, "r('WAWebRegistrationUtils').DEVICE_PLATFORM") == "Chrome"

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
            assert events["states"] == ["UNPAIRED"]
            assert page.errors == []

    run(scenario())


def test_a_scan_links_the_browser_and_a_restart_comes_back_connected_without_a_scan(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                device = await link(page, client, PHONE, name="Demo Shop")
                assert await js(page, "Conn.wid") == {
                    "user": PHONE,
                    "server": "c.us",
                    "_serialized": f"{PHONE}@c.us",
                }
                assert await js(page, "Conn.pushname") == "Demo Shop"
                assert await js(page, "Conn.ref") is None
                assert (await recorded(page))["states"] == ["UNPAIRED", "PAIRING", "CONNECTED"]
                await page.waitForSelector("#pane-side")
                assert await page.querySelector("div[data-ref]") is None
                bundle = await stored(page, "WASecretBundle")
                assert bundle["deviceId"] == device
                assert bundle["wid"] == PHONE
                listed = await client.device(device)
                assert (listed["phone"], listed["online"], listed["qr"]) == (PHONE, True, None)

            assert (await client.device(device))["online"] is False
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert (await recorded(page))["states"] == ["CONNECTED"]
                assert await js(page, "Conn.wid._serialized") == f"{PHONE}@c.us"
                await page.waitForSelector("#pane-side")
                assert page.errors == []

    run(scenario())


def test_an_incoming_message_fires_msg_add_with_the_whatsapp_fields(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            status, body = await client.request(
                "POST",
                f"/_sim/phones/{PHONE}/messages",
                {"id": "ABCD1", "from": CUSTOMER, "body": "hello there", "name": "Ann"},
            )
            assert (status, body) == (202, {"queued": False})
            await wait_for(page, "window.recorded.messages.length === 1")
            (msg,) = (await recorded(page))["messages"]
            assert abs(msg.pop("t") - time.time()) < 5
            assert msg == {
                "id": {
                    "fromMe": False,
                    "remote": f"{CUSTOMER}@c.us",
                    "id": "ABCD1",
                    "_serialized": f"false_{CUSTOMER}@c.us_ABCD1",
                },
                "from": f"{CUSTOMER}@c.us",
                "to": f"{PHONE}@c.us",
                "body": "hello there",
                "type": "chat",
                "isNewMsg": True,
                "fromMe": False,
                "notifyName": "Ann",
            }
            assert await js(page, f"Chat.get('{CUSTOMER}@c.us').id._serialized") == f"{CUSTOMER}@c.us"
            assert await js(page, "Chat.get('19999999999@c.us') === undefined") is True
            await wait_for(page, f"document.querySelector('#pane-side').textContent.includes('{CUSTOMER}')")
            phones = await client.ok("GET", "/_sim/phones")
            assert phones[0]["queued"] == 0, "acknowledged messages leave the queue"

    run(scenario())


def test_messages_posted_while_the_browser_is_closed_arrive_in_order_on_the_next_start(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                await link(await open_whatsapp(browser, simulator.url), client, PHONE)
            for n in range(1, 4):
                status, body = await client.request(
                    "POST",
                    f"/_sim/phones/{PHONE}/messages",
                    {"id": f"M{n}", "from": CUSTOMER, "body": f"#{n}"},
                )
                assert (status, body) == (202, {"queued": True})
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "window.recorded.messages.length === 3")
                assert [m["body"] for m in (await recorded(page))["messages"]] == ["#1", "#2", "#3"]

    run(scenario())


def test_received_messages_are_kept_as_history_across_a_restart(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                for n in (1, 2):
                    await client.ok("POST", f"/_sim/phones/{PHONE}/messages",
                                    {"id": f"H{n}", "from": CUSTOMER, "body": f"#{n}"})
                await wait_for(page, "window.recorded.messages.length === 2")
                # Acknowledged (so no longer queued) only once on the page's disk.
                await asyncio.sleep(0.5)
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'CONNECTED'")
                history = await js(page, "Msg.getModelsArray().map(m => [m.id.id, m.body, m.isNewMsg, m.fromMe])")
                assert history == [["H1", "#1", False, False], ["H2", "#2", False, False]]
                assert (await recorded(page))["messages"] == [], "history is not announced as new"

    run(scenario())


def test_a_message_is_redelivered_after_a_reload_until_a_listener_takes_it(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = (await browser.pages())[0]
            await page.goto(simulator.url)  # no listener on Msg 'add': messages are held, not acknowledged
            await link(page, client, PHONE)
            await client.ok(
                "POST", f"/_sim/phones/{PHONE}/messages", {"id": "H1", "from": CUSTOMER, "body": "x"}
            )
            await asyncio.sleep(0.3)
            assert (await client.ok("GET", "/_sim/phones"))[0]["queued"] == 1
            await page.evaluateOnNewDocument(RECORDER)
            await page.reload()
            await wait_for(page, "window.recorded.messages.length === 1")
            assert (await recorded(page))["messages"][0]["id"]["id"] == "H1"

    run(scenario())


def test_the_same_message_id_posted_twice_fires_two_add_events(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            for _ in range(2):
                await client.ok(
                    "POST", f"/_sim/phones/{PHONE}/messages", {"id": "DUP", "from": CUSTOMER, "body": "x"}
                )
            await wait_for(page, "window.recorded.messages.length === 2")
            ids = [m["id"]["_serialized"] for m in (await recorded(page))["messages"]]
            assert ids == [f"false_{CUSTOMER}@c.us_DUP"] * 2

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
                assert await js(page, "Conn.wid._serialized") == f"{PHONE}@c.us"

    run(scenario())


def test_a_client_chosen_message_id_is_sent_once_however_often_it_is_sent(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            send = """async (to) => {
              const wid = window.require('WAWebWidFactory').createWid(to);
              const { chat } = await window.require('WAWebFindChatAction').findOrCreateLatestChat(wid);
              const action = window.require('WAWebSendTextMsgChatAction');
              const first = await action.sendTextMsgToChat(chat, 'once', {id: '3EB0CAFE0000000001'});
              const again = await action.sendTextMsgToChat(chat, 'once', {id: '3EB0CAFE0000000001'});
              return [first.id, again.id];
            }"""
            assert await page.evaluate(send, f"{CUSTOMER}@c.us") == ["3EB0CAFE0000000001"] * 2
            outbox = await client.ok("GET", f"/_sim/phones/{PHONE}/outbox")
            assert [(m["id"], m["body"]) for m in outbox] == [("3EB0CAFE0000000001", "once")]

    run(scenario())


def test_send_text_msg_to_chat_lands_in_the_outbox(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            assert await client.ok("GET", f"/_sim/phones/{PHONE}/outbox") == []
            result = await page.evaluate(
                """async (to) => {
                  const wid = window.require('WAWebWidFactory').createWid(to);
                  const { chat } = await window.require('WAWebFindChatAction').findOrCreateLatestChat(wid);
                  return window.require('WAWebSendTextMsgChatAction').sendTextMsgToChat(chat, 'Thanks, we are open 9-5');
                }""",
                f"{CUSTOMER}@c.us",
            )
            assert result["messageSendResult"] == "OK"
            (sent,) = await client.ok("GET", f"/_sim/phones/{PHONE}/outbox")
            assert sent["id"] == result["id"]
            assert (sent["to"], sent["body"]) == (CUSTOMER, "Thanks, we are open 9-5")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sent["sent_at"])
            own = (await recorded(page))["messages"]
            assert [(m["fromMe"], m["id"]["_serialized"]) for m in own] == [
                (True, f"true_{CUSTOMER}@c.us_{result['id']}")
            ], "like WhatsApp Web, the sent message is also added to Msg (fromMe: true)"

            assert await client.ok("DELETE", f"/_sim/phones/{PHONE}/outbox") == {"cleared": True}
            assert await client.ok("GET", f"/_sim/phones/{PHONE}/outbox") == []

    run(scenario())


def test_sending_while_not_connected_rejects(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator), chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await wait_for(page, "Socket.state === 'UNPAIRED'")
            error = await page.evaluate(
                """async () => {
                  const { chat } = await window.require('WAWebFindChatAction').findOrCreateLatestChat(
                    window.require('WAWebWidFactory').createWid('15559990000@c.us'));
                  try { await window.require('WAWebSendTextMsgChatAction').sendTextMsgToChat(chat, 'x'); return null; }
                  catch (err) { return err.message; }
                }"""
            )
            assert "UNPAIRED" in error

    run(scenario())


def test_a_network_drop_times_out_refuses_reloads_and_then_recovers(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            await client.ok(
                "POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 2500, "silent": False}
            )
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            assert (await recorded(page))["states"][-1] == "TIMEOUT"
            await asyncio.sleep(0.5)
            assert await state(page) == "TIMEOUT", "the page does not reconnect by itself"

            await page.reload()  # during the drop
            await wait_for(page, "Socket.state === 'TIMEOUT'")
            assert (await recorded(page))["states"] == ["TIMEOUT"]
            assert await page.querySelector("#pane-side") is None

            await asyncio.sleep(2.5)
            await page.reload()  # after it
            await wait_for(page, "Socket.state === 'CONNECTED'")
            assert page.errors == []

    run(scenario())


def test_a_silent_drop_flips_the_state_to_timeout_without_an_event(simulator, tmp_path):
    async def scenario():
        async with fresh(simulator) as client, chromium(tmp_path / "profile") as browser:
            page = await open_whatsapp(browser, simulator.url)
            await link(page, client, PHONE)
            await wait_for(page, "Socket.lastPongAt > 0")
            await client.ok("POST", f"/_sim/phones/{PHONE}/disconnect", {"duration_ms": 4000, "silent": True})
            status, body = await client.request(
                "POST", f"/_sim/phones/{PHONE}/messages", {"id": "S1", "from": CUSTOMER, "body": "lost?"}
            )
            assert (status, body) == (202, {"queued": True}), "a silenced device gets nothing"
            last_pong = await js(page, "Socket.lastPongAt")
            await wait_for(page, "Socket.state === 'TIMEOUT'", timeout_ms=PING_TIMEOUT_MS * 4)
            assert await js(page, "Socket.lastPongAt") == last_pong
            events = await recorded(page)
            assert events["states"] == ["UNPAIRED", "PAIRING", "CONNECTED"], (
                "no change:state for the silent death"
            )
            assert events["messages"] == []

            await asyncio.sleep(3.5)
            await page.reload()
            await wait_for(page, "Socket.state === 'CONNECTED'")
            await wait_for(page, "window.recorded.messages.length === 1")

    run(scenario())


def test_logout_fires_cmd_logout_clears_storage_and_shows_a_new_qr(simulator, tmp_path):
    profile = tmp_path / "profile"

    async def scenario():
        async with fresh(simulator) as client:
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await link(page, client, PHONE)
                await client.ok("POST", f"/_sim/phones/{PHONE}/logout")
                await wait_for(page, "window.recorded.logouts === 1")
                await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
                assert await js(page, "Conn.wid") is None
                assert await stored(page, "WASecretBundle") is None
                assert await stored(page, "last-wid-md") is None
                await page.waitForSelector("div[data-ref]")
                assert await page.querySelector("#pane-side") is None
                assert (await recorded(page))["states"][-1] == "UNPAIRED"
                status, _ = await client.request("POST", f"/_sim/phones/{PHONE}/logout")
                assert status == 404, "the phone has no linked device any more"
            async with chromium(profile) as browser:
                page = await open_whatsapp(browser, simulator.url)
                await wait_for(page, "Socket.state === 'UNPAIRED' && Conn.ref")
                await page.waitForSelector("div[data-ref]")

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
                    page, "window.recorded.logouts === 1 && Socket.state === 'UNPAIRED' && Conn.ref"
                )
                assert await stored(page, "WASecretBundle") is None

    run(scenario())


def test_a_new_scan_by_the_same_phone_logs_the_old_device_out(simulator, tmp_path):
    async def scenario():
        async with (
            fresh(simulator) as client,
            chromium(tmp_path / "old") as old_browser,
            chromium(tmp_path / "new") as new_browser,
        ):
            old = await open_whatsapp(old_browser, simulator.url)
            old_device = await link(old, client, PHONE)
            new = await open_whatsapp(new_browser, simulator.url)
            new_device = await link(new, client, PHONE)
            await wait_for(old, "window.recorded.logouts === 1 && Socket.state === 'UNPAIRED'")
            assert (await client.device(old_device))["phone"] is None
            assert (await client.device(new_device))["phone"] == PHONE

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
                ("POST", "/_sim/scan", '{"qr": "a,b,c,d", "phone": "not-digits"}', 400),
                ("POST", f"/_sim/phones/{PHONE}/messages", "", 400),
                ("POST", f"/_sim/phones/{PHONE}/messages", '{"id": "1", "from": "15559990000"}', 400),
                (
                    "POST",
                    f"/_sim/phones/{PHONE}/messages",
                    '{"id": "", "from": "15559990000", "body": "x"}',
                    400,
                ),
                ("POST", f"/_sim/phones/{PHONE}/messages", '{"id": "1", "from": "ann", "body": "x"}', 400),
                ("POST", "/_sim/phones/abc/messages", '{"id": "1", "from": "15559990000", "body": "x"}', 400),
                ("GET", f"/_sim/phones/{PHONE}/outbox", None, 404),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", "{}", 404),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"duration_ms": "soon"}', 400),
                ("POST", f"/_sim/phones/{PHONE}/disconnect", '{"duration_ms": -1}', 400),
                ("POST", f"/_sim/phones/{PHONE}/logout", None, 404),
                ("GET", "/_sim/nothing-here", None, 404),
                ("GET", "/_sim/ws", None, 400),
            ]
            for method, path, raw, expected in cases:
                status, body = await client.request(method, path, raw=raw)
                assert status == expected, (method, path, raw, status, body)
                assert isinstance(body["error"], str), (method, path, body)
                assert body["error"], (method, path, body)

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
                await client.ok(
                    "POST", f"/_sim/phones/{PHONE}/messages", {"id": "K1", "from": CUSTOMER, "body": "x"}
                )
                await wait_for(page, "window.recorded.messages.length === 1")
                # The page acknowledges once the message is on its disk; stopping before the
                # acknowledgement arrives would rightly get the message redelivered.
                for _ in range(100):
                    if (await client.ok("GET", "/_sim/phones"))[0]["queued"] == 0:
                        break
                    await asyncio.sleep(0.05)
                sim.stop()
                await wait_for(page, "Socket.state === 'TIMEOUT'")
                assert (await recorded(page))["states"][-1] == "TIMEOUT"
                sim = start()
                await page.reload()
                await wait_for(page, "Socket.state === 'CONNECTED'")
                assert (await recorded(page))["messages"] == [], "the acknowledged message is not redelivered"
        finally:
            sim.stop()
        assert json.loads(state_file.read_text())["phones"][0]["device"] is not None
        assert "Traceback" not in (tmp_path / "simulator.log").read_text()

    run(scenario())
