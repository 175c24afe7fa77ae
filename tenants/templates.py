"""Reply templates: how an incoming text picks its reply, and what may be saved.

Matching order: exact, then keyword, then regex, then the default fallback;
within a kind, higher priority first, then the older template.
- exact: the whole text, ignoring case and surrounding/repeated whitespace;
- keyword: any of the comma-separated keywords appears as a whole word;
- regex: the pattern is found anywhere in the text (case-insensitive).
Placeholders in the reply body: {name} (the sender's WhatsApp name, else
their number), {number}, {tenant}.

Regular expressions run on the `regex` engine with a time limit, and a pattern
that is invalid or backtracks pathologically is refused when it is saved.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import regex

from flowhq.errors import ValidationFailed
from tenants.models import MatchKind

KIND_ORDER = {MatchKind.EXACT: 0, MatchKind.KEYWORD: 1, MatchKind.REGEX: 2, MatchKind.DEFAULT: 3}
PLACEHOLDERS = frozenset({"name", "number", "tenant"})
MATCH_TIMEOUT_S = 0.05
SAVE_PROBE_TIMEOUT_S = 0.05
PROBE_LENGTH = 3000


@dataclass(frozen=True)
class Template:
    id: int
    match: str
    pattern: str
    body: str
    priority: int = 0


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


class CompiledTemplates:
    """A tenant's enabled templates, ready to match incoming texts quickly."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self.templates = sorted(templates, key=lambda t: (KIND_ORDER.get(t.match, 9), -t.priority, t.id))
        self._regex: dict[int, Any] = {}
        self._keywords: dict[int, Any] = {}
        for t in self.templates:
            if t.match == MatchKind.REGEX:
                self._regex[t.id] = regex.compile(t.pattern, regex.IGNORECASE)
            elif t.match == MatchKind.KEYWORD:
                words = [w.strip() for w in t.pattern.split(",") if w.strip()]
                self._keywords[t.id] = regex.compile(
                    r"(?<!\w)(?:" + "|".join(regex.escape(w) for w in words) + r")(?!\w)", regex.IGNORECASE
                ) if words else None

    def match(self, text: str) -> Template | None:
        normalised = _normalise(text)
        for t in self.templates:
            if t.match == MatchKind.EXACT and normalised == _normalise(t.pattern):
                return t
            if t.match == MatchKind.KEYWORD and self._keywords.get(t.id) and self._keywords[t.id].search(text):
                return t
            if t.match == MatchKind.REGEX:
                try:
                    if self._regex[t.id].search(text, timeout=MATCH_TIMEOUT_S):
                        return t
                except TimeoutError:
                    continue
            if t.match == MatchKind.DEFAULT:
                return t
        return None


class _Keep(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(body: str, *, name: str, number: str, tenant: str) -> str:
    try:
        return body.format_map(_Keep(name=name or number, number=number, tenant=tenant))
    except (ValueError, IndexError, AttributeError):
        return body


def validate_template(*, match: str, pattern: str, body: str) -> None:
    """Raise ValidationFailed (with per-field details) if the template must not be saved."""
    errors: dict[str, list[str]] = {}
    if match in (MatchKind.EXACT, MatchKind.KEYWORD, MatchKind.REGEX) and not pattern.strip():
        errors["pattern"] = [f"A {match} template needs a pattern."]
    if match == MatchKind.REGEX and pattern.strip():
        problem = regex_problem(pattern)
        if problem:
            errors["pattern"] = [problem]
    if not body.strip():
        errors["body"] = ["The reply may not be empty."]
    else:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(body) if f is not None}
        except ValueError as exc:
            errors["body"] = [f"Malformed placeholder: {exc}. Write {{{{ and }}}} for literal braces."]
        else:
            unknown = sorted(f for f in fields if f not in PLACEHOLDERS)
            if unknown:
                errors["body"] = [f"Unknown placeholder(s) {', '.join(unknown)}; use {{name}}, {{number}} or {{tenant}}."]
    if errors:
        raise ValidationFailed("The template is not valid; see details.", details=errors)


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` may not be used, or None: invalid, or too slow on adversarial input."""
    try:
        compiled = regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        return f"Invalid regular expression: {exc}."
    chars = {c for c in pattern if c.isalnum()} or {"a"}
    probes = [c * PROBE_LENGTH + tail for c in sorted(chars)[:8] for tail in ("", "!", "\n", "0")]
    probes += ["a1 " * (PROBE_LENGTH // 3) + "!", " " * PROBE_LENGTH + "x"]
    for probe in probes:
        try:
            compiled.search(probe, timeout=SAVE_PROBE_TIMEOUT_S)
        except TimeoutError:
            return "This regular expression is pathologically slow (catastrophic backtracking); simplify it."
    return None
