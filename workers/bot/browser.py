"""Launching and closing the tenant's Chromium with pyppeteer.

Chromium comes from the system (PUPPETEER_EXECUTABLE_PATH or `chromium` on
PATH): pyppeteer is always given an executable, so it never tries to download
one. The profile is SESSIONS_PATH/<tenant id>, which keeps the WhatsApp link
across restarts. The flags are what a headless server needs, minus everything
that phones home (this machine's network is closed; production's should not
leak either) and every process and decoder the bot does not use; each flag says
what it saves and what it costs (bench/bench_memory.py measures them: one idle
linked Chromium 136 → 74 MB private). Left out on purpose: `--no-zygote` (+42 MB:
every renderer starts afresh instead of sharing the zygote's pages),
`--single-process` (unsupported; one launch in three hung) and a small V8 heap
cap (a real WhatsApp tab needs its heap). Tried and not taken (Chromium 156):
`--in-process-gpu` (the GPU thread in the browser process: +12 MB private, not
less) and `--enable-features=NetworkServiceInProcess` (no such feature any
more: the network service stays a process of its own, 18 MB). Chromium gets an allow-listed environment, not the worker's
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

# One flag per line, and why: what it saves, what it costs. Measured on Chromium 156 (Debian),
# headless, linked to the simulator; issue 12 has the figures. Debian's /usr/bin/chromium wrapper
# moves every flag before the first non-flag argument (pyppeteer's defaults, before its
# `about:blank`) to the end of the command line, and Chromium takes only the LAST
# `--disable-features` / `--enable-features`: pyppeteer's `--disable-features=site-per-process`
# silently replaced ours. So the features are one merged list (DISABLED_FEATURES), no other flag in
# FLAGS names features, and pyppeteer's conflicting defaults are dropped (IGNORED_DEFAULT_ARGS).
FLAGS = [
    # GPU off the critical path: no GPU (a server has none), and no SwiftShader software GL either
    # (--disable-software-rasterizer): the compositor draws in software. Saves ~11 MB of the GPU
    # process (17 → 6 MB private). Costs: no WebGL, which WhatsApp Web does not need.
    "--disable-gpu",
    "--disable-software-rasterizer",
    # /dev/shm is small in containers; Chromium puts its shared memory in /tmp instead.
    "--disable-dev-shm-usage",
    # Nothing that phones home or runs in the background for a person: no network or CPU used for
    # what a headless bot never shows. Costs nothing the bot uses.
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
    "--metrics-recording-only",
    "--no-pings",
    # Media: nothing is played, so nothing is decoded or sent to a sound server. The bot answers
    # media by its caption (a field of the message model), never by its pixels or sound.
    "--mute-audio",
    "--autoplay-policy=user-gesture-required",
    "--password-store=basic",
    "--use-mock-keychain",
    "--window-size=1280,800",
    f"--user-agent={USER_AGENT}",
]

# Only the bot's own Chromium (not the admin screenshots and page tests that reuse chromium_args):
BOT_FLAGS = [
    # Images are not decoded: nobody looks at this page. The QR is not read from the page's
    # canvas but built from the model (`WAWebConnModel.Conn.ref` and the keys, workers/bot/driver.py),
    # and media arrive as message models with their caption; a bot that had to look at an image
    # would fetch it through the page's own download, not an <img>. Saves the decoded bitmaps of
    # avatars, previews and stickers (grows with the chat list); costs nothing the bot reads.
    "--blink-settings=imagesEnabled=false",
]

# Chromium features off, in one list (see above: only one --disable-features counts).
DISABLED_FEATURES = [
    # Phone-home and person-facing services (kept from before; they were lost, see above).
    "Translate",
    "OptimizationHints",
    "MediaRouter",
    "AutofillServerCommunication",
    "CertificateTransparencyComponentUpdater",
    # The omnibox popup is a WebUI page (chrome://omnibox-popup.top-chrome/) that new headless
    # starts in a renderer of its own and never shows: ~36-38 MB private. Costs nothing headless.
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    # A spare renderer kept warm for the next navigation to a new site: ~6 MB, and the bot's one
    # page never navigates to another site. Costs: a reload of WhatsApp Web starts its renderer
    # cold (tens of ms, beside the page's own seconds of loading).
    "SpareRendererForSitePerProcess",
]
ENABLED_FEATURES: list[str] = []

# pyppeteer's defaults (pyppeteer/launcher.py DEFAULT_ARGS) that must not reach Chromium: its own
# `--disable-features=site-per-process` would replace DISABLED_FEATURES (and Chromium's feature is
# spelt `SitePerProcess`: dropping it changes nothing else, site isolation stays as Chromium ships it).
IGNORED_DEFAULT_ARGS = ["--disable-features=site-per-process"]


def feature_flags() -> list[str]:
    """The one --disable-features (and --enable-features, if any) Chromium gets."""
    flags = [f"--disable-features={','.join(DISABLED_FEATURES)}"]
    if ENABLED_FEATURES:
        flags.append(f"--enable-features={','.join(ENABLED_FEATURES)}")
    return flags


def chromium_args() -> list[str]:
    """FLAGS and the merged features; `--no-sandbox` only where Chromium cannot sandbox itself (as root)."""
    args = [*FLAGS, *feature_flags()]
    return args if settings.CHROMIUM_SANDBOX else [*args, "--no-sandbox"]


def applied_disabled_features(cmdline: list[str]) -> list[str]:
    """The features a Chromium process with this command line really has off: its last
    --disable-features wins (what the renderers' command lines show)."""
    lists = [arg.split("=", 1)[1] for arg in cmdline if arg.startswith("--disable-features=")]
    return [name for name in lists[-1].split(",") if name] if lists else []


def launch_options() -> dict[str, Any]:
    """What pyppeteer's launch() needs besides the profile: the flags, and its defaults that must go."""
    return {"args": [*chromium_args(), *BOT_FLAGS], "ignoreDefaultArgs": IGNORED_DEFAULT_ARGS}


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
        **launch_options(),
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
