"""Typed reads of environment variables.

Every knob FlowHQ has is read through these helpers, from `flowhq/settings.py`
only. A malformed value fails loudly and names the variable, so a typo in a
deployment is an error at start-up rather than a surprise at run time.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_PERIODS = {"second", "minute", "hour", "day", "s", "m", "h", "d"}


class EnvError(ImproperlyConfigured):
    """An environment variable holds a value FlowHQ cannot use."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is not valid: expected {expected}")
        self.name = name


class Env:
    """Reads typed values from a mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: builtins.str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise EnvError(name, value, "one of 1/0, true/false, yes/no, on/off")

    def int(
        self, name: builtins.str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise EnvError(name, value, "an integer") from None
        if minimum is not None and number < minimum:
            raise EnvError(name, value, f"an integer >= {minimum}")
        if maximum is not None and number > maximum:
            raise EnvError(name, value, f"an integer <= {maximum}")
        return number

    def float(self, name: builtins.str, default: float, *, minimum: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise EnvError(name, value, "a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise EnvError(name, value, "a finite number")
        if minimum is not None and number < minimum:
            raise EnvError(name, value, f"a number >= {minimum}")
        return number

    def list(self, name: builtins.str, default: list[builtins.str]) -> list[builtins.str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def rate(self, name: builtins.str, default: builtins.str) -> builtins.str:
        """A request rate as DRF writes it: `<count>/<second|minute|hour|day>` (`60/minute`)."""
        value = self.raw(name) or default
        count, _, period = value.partition("/")
        if not (count.isascii() and count.isdigit() and int(count) > 0) or period not in _PERIODS:
            raise EnvError(name, value, "a rate like 60/minute (count/second, minute, hour or day)")
        return value

    def path(self, name: builtins.str, default: Path, *, base: Path) -> Path:
        value = self.raw(name)
        path = Path(value) if value is not None else default
        return path if path.is_absolute() else (base / path).resolve()

    def url(self, name: builtins.str, default: builtins.str, *, schemes: tuple[builtins.str, ...]) -> builtins.str:
        value = self.raw(name) or default
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise EnvError(name, value, f"a URL with scheme {' or '.join(schemes)}")
        return value


def load_dotenv(path: Path, environ: dict[builtins.str, builtins.str] | None = None) -> None:
    """Load KEY=VALUE lines from `path` without overriding what is already set.

    `make run` keeps its generated secrets in `.env`; honcho reads the same file.
    """
    target = os.environ if environ is None else environ
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        target.setdefault(key.strip(), value.strip().strip("'\""))
