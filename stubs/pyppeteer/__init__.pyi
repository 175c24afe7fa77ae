from typing import Any

from pyppeteer.browser import Browser

async def launch(options: dict[str, Any] | None = None, **kwargs: Any) -> Browser: ...
