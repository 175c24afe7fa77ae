"""QR codes for onboarding: the payload WhatsApp Web shows, as a PNG data URI."""

from __future__ import annotations

import base64
import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage

DATA_URI_PREFIX = "data:image/png;base64,"


def qr_data_uri(payload: str) -> str:
    """Render `payload` as a PNG QR code a phone (or a decoder) reads back exactly."""
    # PilImage is qrcode's default while Pillow is installed; named, so save() takes `format`.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=4, image_factory=PilImage)
    code.add_data(payload)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return DATA_URI_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


class QrBudget:
    """Counts QR codes shown without a scan; after `limit` the bot stops asking.

    WhatsApp rotates the code every ~20 s. A tenant who is not there to scan
    should not keep a browser busy forever: they see why, and a restart
    (or "show a new QR") starts a fresh budget. A limit of 0 never runs out:
    the demo keeps offering codes while a newcomer reads the README.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.shown = 0
        self._last: str | None = None

    def new_code(self, payload: str) -> bool:
        """Record `payload`; False once the budget is spent (the same payload twice counts once)."""
        if payload != self._last:
            self._last = payload
            self.shown += 1
        return not self.exhausted

    @property
    def exhausted(self) -> bool:
        return self.limit > 0 and self.shown > self.limit

    def reset(self) -> None:
        self.shown = 0
        self._last = None
