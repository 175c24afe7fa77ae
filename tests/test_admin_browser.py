"""The admin in a real browser: an operator logs in, starts a tenant's worker from the changelist and
watches its QR code appear — and rotate — on the tenant page without reloading it.

Headless Chromium (pyppeteer) talks to Django's live_server; a real fleet agent spawns the tenant
worker, whose bot opens the simulator and publishes the QR that the admin page shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from django.contrib.auth import get_user_model
from pyppeteer import launch

from flowhq.chromium import find_chromium
from tenants import services
from tests.botkit import Sim, decode_qr, start_agent
from tests.harness import wait_for
from workers.bot.browser import chromium_args

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:remove loop argument:DeprecationWarning"),  # pyppeteer on websockets 10
]

T = TypeVar("T")
PASSWORD = "operator-pass-123"
QR_IMG = '#tenant-qr img[src^="data:image/png;base64,"]'
# The operator's browser: the bot's server flags, sandbox rule included, and a taller window.
FLAGS = [*chromium_args(), "--window-size=1280,900"]


def processes_of_profile(profile: Path) -> list[psutil.Process]:
    """Live Chromium processes of this browser profile (every one of them carries it on its command line)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and str(profile) in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Browser:
    """A headless Chromium driven step by step from the test's (synchronous) code, so the test's
    database calls stay outside the event loop."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.loop = asyncio.new_event_loop()
        self.browser = self.run(launch(
            executablePath=find_chromium(), userDataDir=str(profile), headless=True, args=FLAGS,
            handleSIGINT=False, handleSIGTERM=False, handleSIGHUP=False, autoClose=False,
        ))
        self.page = self.run(self.browser.newPage())
        self.run(self.page.setViewport({"width": 1280, "height": 900}))

    def run(self, step: Awaitable[T], timeout: float = 60) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(step, timeout))

    def submit(self, button: str) -> None:
        """Click a submit button and wait for the page it leads to."""

        async def click_and_wait() -> None:
            await asyncio.gather(self.page.waitForNavigation(), self.page.click(button))

        self.run(click_and_wait())

    def sign_in(self, url: str, username: str, password: str, button: str = 'input[type="submit"]') -> None:
        """Open the sign-in page at `url`, fill in Django's username and password fields, submit."""
        self.run(self.page.goto(url))
        self.run(self.page.type("#id_username", username))
        self.run(self.page.type("#id_password", password))
        self.submit(button)

    def text(self, selector: str) -> str:
        return self.run(self.page.querySelectorEval(selector, "node => node.textContent"))

    def qr_src(self) -> str:
        return self.run(self.page.querySelectorEval(QR_IMG, "img => img.src"))

    def close(self) -> None:
        try:
            self.run(self.browser.close(), timeout=15)
        except Exception:
            pass
        process = self.browser.process
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        for leftover in processes_of_profile(self.profile):
            leftover.kill()
        psutil.wait_procs(processes_of_profile(self.profile), timeout=10)
        self.loop.close()


@pytest.fixture
def operator(db) -> Any:
    return get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")


@pytest.fixture
def plain_http_cookies(settings) -> None:
    """The live server speaks plain HTTP: session and CSRF cookies must not be Secure-only."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def current_qr_payloads(sim: Sim) -> set[str]:
    return {device["qr"] for device in sim.devices() if device.get("qr")}


def test_an_operator_starts_a_tenant_and_sees_its_qr(live_server, bot_fleet, sim: Sim, operator, tmp_path,
                                                     plain_http_cookies):
    tenant = services.tenant_create(name="Acme")
    start_agent(bot_fleet)
    profile = tmp_path / "admin-browser"
    browser = Browser(profile)
    try:
        page = browser.page
        browser.sign_in(f"{live_server.url}/admin/", "operator", PASSWORD)
        assert page.url == f"{live_server.url}/admin/"

        browser.run(page.goto(f"{live_server.url}/admin/tenants/tenant/"))
        browser.run(page.click(f'input.action-select[value="{tenant.pk}"]'))
        browser.run(page.select('select[name="action"]', "worker_start"))
        browser.submit('button[name="index"]')
        assert "Start requested for Acme" in browser.text("ul.messagelist")

        browser.run(page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/"))
        browser.run(page.evaluate("() => { window.notReloaded = true; }"))
        browser.run(page.waitForSelector(QR_IMG, {"timeout": 90_000}), timeout=100)

        # The QR on the page is one the simulator shows (it rotates every 2 s: read both close together).
        def page_qr_is_shown() -> str:
            before = current_qr_payloads(sim)
            payload = decode_qr(browser.qr_src())
            return payload if payload in before | current_qr_payloads(sim) else ""

        first = wait_for(page_qr_is_shown, 20, interval=0.3, what="the page's QR among the simulator's")
        # ...and the page follows the rotation by itself.
        wait_for(lambda: decode_qr(browser.qr_src()) != first, 20, interval=0.3, what="a rotated QR on the page")
        assert browser.run(page.evaluate("() => window.notReloaded === true"))
    finally:
        browser.close()
    assert processes_of_profile(profile) == []
