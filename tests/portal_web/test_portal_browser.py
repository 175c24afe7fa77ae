"""The portal in a real browser: a member signs in, scans the QR on their page with the simulator's
phone, sees CONNECTED pushed without a reload, sees a customer's message arrive in their log, and
resumes a chat they took over; a member of another tenant then signs in and gets none of it.

Headless Chromium (pyppeteer) talks to Django's live_server; a real fleet agent spawns the tenant
worker, whose bot opens the simulator and publishes the QR that the portal's event stream pushes.
"""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import ChatPause, MessageLog
from tests.botkit import Sim, decode_qr, start_agent
from tests.harness import wait_for
from tests.portal_web.conftest import PASSWORD, member
from tests.test_admin_browser import Browser, processes_of_profile
from workers import lifecycle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:remove loop argument:DeprecationWarning"),  # pyppeteer on websockets 10
]

PHONE = "4915100000014"
CUSTOMER = "4917000000014"
QR_IMG = '#portal-qr .qr-box:not([hidden]) img[src^="data:image/png;base64,"]'


@pytest.fixture
def portal_settings(settings) -> None:
    """Plain HTTP cookies for the live server, and short-lived streams so none outlives the test."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PORTAL_SSE_POLL_MS = 300
    settings.PORTAL_SSE_KEEPALIVE_SECONDS = 1
    settings.PORTAL_SSE_LIFETIME_SECONDS = 30


def sign_in(browser: Browser, base: str, email: str) -> None:
    browser.sign_in(f"{base}/portal/sign-in/", email, PASSWORD, '#sign-in button[type="submit"]')
    assert browser.page.url == f"{base}/portal/"


def wait_selector(browser: Browser, selector: str, timeout: float = 60) -> None:
    browser.run(browser.page.waitForSelector(selector, {"timeout": timeout * 1000}), timeout=timeout + 10)


def status_of(browser: Browser, url: str) -> int:
    response = browser.run(browser.page.goto(url))
    return response.status


def test_a_member_links_their_phone_watches_their_log_and_resumes_a_chat(
    live_server, bot_fleet, sim: Sim, tmp_path, portal_settings,
):
    bot_fleet.env["HUMAN_TAKEOVER_MINUTES"] = "30"
    tenant = services.tenant_create(name="Acme Bakery")
    services.template_create(tenant=tenant, match="exact", pattern="menu", body="Bread 2.10, croissant 1.80.")
    member(tenant, "alice@acme.example")
    other = services.tenant_create(name="Globex")
    member(other, "olga@globex.example")
    start_agent(bot_fleet)
    lifecycle.worker_start(tenant_id=tenant.pk)

    profile = tmp_path / "portal-browser"
    browser = Browser(profile)
    base = live_server.url
    try:
        page = browser.page
        sign_in(browser, base, "alice@acme.example")
        assert "Acme Bakery" in browser.text("#link h1")
        browser.run(page.evaluate("() => { window.notReloaded = true; }"))

        # The QR arrives by the event stream; the simulator's phone scans what the page shows
        # (it rotates every 2 s: a code may go stale between reading and scanning, so try again).
        wait_selector(browser, QR_IMG, 90)

        def scan_the_page() -> bool:
            src = browser.run(page.querySelectorEval(QR_IMG, "img => img.src"))
            sim.scan(decode_qr(src), PHONE)
            return True

        wait_for(scan_the_page, 30, interval=0.5, what="a scan of the QR on the portal page")
        wait_selector(browser, '#link-state[data-state="CONNECTED"]', 60)
        wait_selector(browser, '#bot-state[data-answering="yes"]', 30)
        assert PHONE in browser.text("#linked-phone")
        wait_selector(browser, '#portal-qr .qr-box[hidden]', 10)

        # A customer writes: the message, then the bot's reply, appear in the log on the page.
        sim.message(PHONE, "PORTAL-IN-1", CUSTOMER, "menu", name="Ada")
        wait_selector(browser, '#recent-messages tr[data-message-id="PORTAL-IN-1"]', 30)
        wait_for(lambda: sim.replies(PHONE, "Bread 2.10, croissant 1.80."), 30, what="the bot's reply")
        wait_for(lambda: "Bread 2.10" in browser.text("#recent-messages"), 30, what="the reply in the page's log")

        # The owner answers from the phone: the chat shows as paused, and the member resumes the bot.
        sim.send(PHONE, "own", id="PORTAL-OWN-1", to=CUSTOMER, body="I'll take this one")
        chat = f"{CUSTOMER}@c.us"
        wait_selector(browser, f'#paused-chats li[data-chat="{chat}"] button', 30)
        assert browser.run(page.evaluate("() => window.notReloaded === true"))
        browser.submit(f'#paused-chats li[data-chat="{chat}"] button')
        assert f"The bot answers in {chat} again" in browser.text("ul.notes")
        assert not ChatPause.objects.filter(tenant=tenant).exists()
        # ...and it answers that chat again.
        sim.message(PHONE, "PORTAL-IN-2", CUSTOMER, "menu")
        wait_for(lambda: len(sim.replies(PHONE, "Bread 2.10, croissant 1.80.")) == 2, 30, what="a second reply")

        # The full log, with a filter, on its own page.
        browser.run(page.goto(f"{base}/portal/messages/?direction=in"))
        log_text = browser.text("#message-log")
        assert "PORTAL" not in log_text  # ids are not shown; bodies are
        assert "menu" in log_text
        assert "Bread" not in log_text

        # Someone else's member: signs in, and none of Acme's shows or may be touched.
        template = tenant.templates.get()
        browser.run(page.goto(f"{base}/portal/"))
        browser.submit('form.who button[type="submit"]')
        sign_in(browser, base, "olga@globex.example")
        for url in ["/portal/", "/portal/messages/", "/portal/templates/"]:
            assert status_of(browser, f"{base}{url}") == 200, url
            shown = browser.text("main")
            for leaked in ["Acme", PHONE, CUSTOMER, "Bread", "menu"]:
                assert leaked not in shown, (url, leaked)
        assert status_of(browser, f"{base}/portal/templates/{template.pk}/") == 404
        assert status_of(browser, f"{base}/console/") == 403
    finally:
        browser.close()
    assert processes_of_profile(profile) == []
    assert MessageLog.objects.filter(tenant=tenant, message_id="PORTAL-IN-1").exists()
