"""The bot's Chromium gets one merged --disable-features that really applies (Debian's wrapper
moves pyppeteer's defaults after ours, and only the last list counts), and runs no process the
bot does not use: no omnibox-popup WebUI renderer, no spare renderer."""

from __future__ import annotations

import asyncio

import psutil
from pyppeteer.launcher import Launcher

from tests.botkit import Sim, link, start_agent
from tests.harness import wait_for
from tests.waits import worker
from workers.bot.browser import (
    DISABLED_FEATURES,
    IGNORED_DEFAULT_ARGS,
    applied_disabled_features,
    chromium_args,
    launch_options,
)

PHONE = "4915100000023"
WANTED_OFF = {"WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "SpareRendererForSitePerProcess", "Translate",
              "MediaRouter", "OptimizationHints"}


def test_the_last_disable_features_is_the_one_that_counts():
    assert applied_disabled_features(["chromium", "--disable-features=A,B", "x", "--disable-features=C"]) == ["C"]
    assert applied_disabled_features(["chromium"]) == []


def test_pyppeteer_is_given_one_features_list_and_none_of_its_own():
    assert [a for a in chromium_args() if a.startswith("--disable-features=")] == [
        f"--disable-features={','.join(DISABLED_FEATURES)}"]
    assert not [a for a in chromium_args() if "-features=" in a and not a.startswith(("--disable-features=",
                                                                                       "--enable-features="))]
    loop = asyncio.new_event_loop()  # pyppeteer's Launcher asks for the current loop as it is made
    asyncio.set_event_loop(loop)
    try:
        cmd = Launcher(executablePath="/usr/bin/chromium", userDataDir="/tmp/unused", headless=True,
                       **launch_options()).cmd
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert [a for a in cmd if a.startswith("--disable-features=")] == [f"--disable-features={','.join(DISABLED_FEATURES)}"]
    assert not set(IGNORED_DEFAULT_ARGS) & set(cmd)
    assert "--no-zygote" not in cmd
    assert "--single-process" not in cmd
    assert not [a for a in cmd if "max-old-space-size" in a]


def renderers(tenant_id: int) -> list[list[str]]:
    """The command lines (/proc/<pid>/cmdline) of the renderers under the tenant's worker."""
    found = []
    for proc in psutil.Process(worker(tenant_id).pid).children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.Error:
            continue
        if "--type=renderer" in cmdline:
            found.append(cmdline)
    return found


def test_a_linked_bots_renderers_have_our_features_off_and_there_is_only_the_pages(bot_fleet, sim: Sim, tenant):
    start_agent(bot_fleet)
    link(tenant.pk, sim, PHONE)
    found = wait_for(lambda: renderers(tenant.pk), 10, what="the page's renderer")
    for cmdline in found:
        applied = set(applied_disabled_features(cmdline))
        assert applied >= WANTED_OFF, sorted(WANTED_OFF - applied)
        assert "site-per-process" not in applied  # pyppeteer's default list did not win
    # Before: three renderers — the page's, chrome://omnibox-popup.top-chrome/ (WebUI, never shown
    # headless) and a spare one kept warm for a navigation that never comes.
    assert not [c for c in found if "--top-chrome-webui" in c]  # how Chromium marks the omnibox popup's
    assert len(found) == 1, [next((a for a in c if a.startswith("--renderer-client-id")), "") for c in found]
