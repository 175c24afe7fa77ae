"""Launching and closing the tenant's Chromium with pyppeteer.

Chromium comes from the system (PUPPETEER_EXECUTABLE_PATH or `chromium` on
PATH): pyppeteer is always given an executable, so it never tries to download
one. The profile is SESSIONS_PATH/<tenant id>, which keeps the WhatsApp link
across restarts. The flags are what a headless server needs, minus everything
that phones home (this machine's network is closed; production's should not
leak either). Chromium gets an allow-listed environment, not the worker's
(workers/bot/browser_env.py): no Django secret or database URL reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from django.conf import settings
from pyppeteer import launch
from pyppeteer.browser import Browser
from pyppeteer.page import Page

from flowhq.chromium import find_chromium
from workers.bot.browser_env import chromium_env
from workers.sessions import session_dir

log = logging.getLogger(__name__)

# WhatsApp Web refuses browsers that announce themselves as headless.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

FLAGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--metrics-recording-only",
    "--no-pings",
    "--mute-audio",
    "--password-store=basic",
    "--use-mock-keychain",
    "--window-size=1280,800",
    f"--user-agent={USER_AGENT}",
]


def chromium_args() -> list[str]:
    """FLAGS, and `--no-sandbox` only where Chromium cannot sandbox itself (as root)."""
    return FLAGS if settings.CHROMIUM_SANDBOX else [*FLAGS, "--no-sandbox"]


class BrowserHandle:
    """One Chromium and its one page, with an orderly close that leaves no process."""

    def __init__(self, browser: Browser, page: Page) -> None:
        self.browser = browser
        self.page = page
        self.closing = False

    @property
    def pid(self) -> int | None:
        """The browser process (the root of Chromium's process tree)."""
        process = getattr(self.browser, "process", None)
        return process.pid if process is not None else None

    def alive(self) -> bool:
        process = getattr(self.browser, "process", None)
        return process is not None and process.poll() is None

    def on_crash(self, callback: Callable[[], None]) -> None:
        """Call `callback` when Chromium goes away without us closing it."""

        def disconnected(*_: Any) -> None:
            if not self.closing:
                callback()

        self.browser.on("disconnected", disconnected)

    async def close(self, timeout: float = 10) -> None:
        self.closing = True
        try:
            await asyncio.wait_for(self.page.close(), timeout / 2)
        except Exception:
            pass
        try:
            await asyncio.wait_for(self.browser.close(), timeout / 2)
        except Exception:
            pass
        process = getattr(self.browser, "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        if process is not None:
            await asyncio.get_running_loop().run_in_executor(None, process.wait)


async def launch_browser(tenant_id: int) -> BrowserHandle:
    profile = session_dir(tenant_id, create=True)
    browser = await launch(
        executablePath=find_chromium(),
        userDataDir=str(profile),
        headless=True,
        args=chromium_args(),
        env=chromium_env(),
        # The worker owns signals and shutdown; pyppeteer must not install handlers or atexit hooks.
        handleSIGINT=False, handleSIGTERM=False, handleSIGHUP=False, autoClose=False,
        logLevel=logging.WARNING,
    )
    pages = await browser.pages()
    page = pages[0] if pages else await browser.newPage()
    await page.setUserAgent(USER_AGENT)
    log.info("chromium launched", extra={"pid": browser.process.pid if browser.process else None})
    return BrowserHandle(browser, page)
