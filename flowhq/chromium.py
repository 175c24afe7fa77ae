"""Where the bot's Chromium is: `PUPPETEER_EXECUTABLE_PATH`, else `chromium` on PATH."""

from __future__ import annotations

import os
import shutil

from django.conf import settings

from flowhq.errors import Unavailable

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class ChromiumNotFound(Unavailable):
    code = "chromium_not_found"


def find_chromium() -> str:
    configured = settings.PUPPETEER_EXECUTABLE_PATH
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise ChromiumNotFound(
            f"PUPPETEER_EXECUTABLE_PATH={configured!r} is not an executable file"
        )
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumNotFound(
        "No Chromium found: install the 'chromium' package or set PUPPETEER_EXECUTABLE_PATH"
    )
