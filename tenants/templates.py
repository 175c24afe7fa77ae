"""Reply templates: how an incoming text picks its reply, and what may be saved.

Matching order: exact, then keyword, then regex, then the default fallback;
within a kind, higher priority first, then the older template.
- exact: the whole text, ignoring case and surrounding/repeated whitespace;
- keyword: any of the comma-separated keywords appears as a whole word;
- regex: the pattern is found anywhere in the text (case-insensitive).
Placeholders in the reply body: {name} (the sender's WhatsApp name, else
their number), {number}, {tenant} — names only: no format spec, conversion,
attribute or index ({name:>9}, {name!r}, {name.x} are refused when saved), and
the body is filled in by plain substitution, never by str.format. A reply is cut
to WhatsApp's own text limit.

Regular expressions run on the `regex` engine with a time limit per template and
for the whole match (the engine releases the GIL, so the bot runs matching on a
thread, off its event loop), and a pattern that is invalid or backtracks
pathologically on adversarial input of the character classes it uses is refused
when it is saved.
"""

from __future__ import annotations

import string
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import regex

from flowhq.errors import ValidationFailed
from tenants.models import MatchKind

KIND_ORDER: dict[str, int] = {MatchKind.EXACT: 0, MatchKind.KEYWORD: 1, MatchKind.REGEX: 2, MatchKind.DEFAULT: 3}
PLACEHOLDERS = frozenset({"name", "number", "tenant"})
MATCH_TIMEOUT_S = 0.05
MATCH_BUDGET_S = 0.5
SAVE_PROBE_TIMEOUT_S = 0.05
# All probes together: a pattern slow on every probe (polynomial backtracking) is refused too.
SAVE_PROBE_BUDGET_S = 0.2
PROBE_LENGTH = 3000
# Polynomial backtracking, told apart from a pattern that is merely slow: the slowest probe, at half
# its length, takes less than 1/SUPERLINEAR_RATIO of the time (linear work would take half). Only
# probes slower than SUPERLINEAR_MIN_S are judged so: below it the clock's noise decides.
SUPERLINEAR_RATIO = 3.0
SUPERLINEAR_MIN_S = 0.002
# WhatsApp's own limit on a text message.
TEXT_MAX_CHARS = 65536
_PLACEHOLDER = regex.compile(r"\{\{|\}\}|\{(name|number|tenant)\}")
# One run of each character class a pattern can loop over, then a character that breaks the match.
_PROBE_RUNS = ("1", "a", "A", "_", " ", "\t", ".", "-", "é", "\u0661", "a1", "1a", "a ", "1 ", "ab")
_PROBE_TAILS = ("", "!", "\n", "0", "a", " ", "\x00")


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
        """The template `text` picks. A regex that runs out of time counts as no match, and
        once MATCH_BUDGET_S is spent no more regexes are tried: a bad template costs one
        `no_match`, never the worker."""
        normalised = _normalise(text)
        deadline = time.monotonic() + MATCH_BUDGET_S
        for t in self.templates:
            if t.match == MatchKind.EXACT and normalised == _normalise(t.pattern):
                return t
            if t.match == MatchKind.KEYWORD and self._keywords.get(t.id) and self._keywords[t.id].search(text):
                return t
            if t.match == MatchKind.REGEX:
                left = deadline - time.monotonic()
                if left <= 0:
                    continue
                try:
                    if self._regex[t.id].search(text, timeout=min(MATCH_TIMEOUT_S, left)):
                        return t
                except TimeoutError:
                    continue
            if t.match == MatchKind.DEFAULT:
                return t
        return None


def render(body: str, *, name: str, number: str, tenant: str) -> str:
    """The reply: placeholders filled in by substitution ({{ and }} are literal braces; anything
    else is left as written), cut to TEXT_MAX_CHARS."""
    values = {"name": name or number, "number": number, "tenant": tenant}

    def fill(found: regex.Match[str]) -> str:
        token = found.group(0)
        return token[0] if found.group(1) is None else values[found.group(1)]

    return _PLACEHOLDER.sub(fill, body)[:TEXT_MAX_CHARS]


def _article(word: str) -> str:
    """The indefinite article before `word`: "An exact", "A keyword"."""
    return "An" if word[:1].lower() in "aeiou" else "A"


def validate_template(*, match: str, pattern: str, body: str) -> None:
    """Raise ValidationFailed (with per-field details) if the template must not be saved."""
    errors: dict[str, list[str]] = {}
    if match in (MatchKind.EXACT, MatchKind.KEYWORD, MatchKind.REGEX) and not pattern.strip():
        errors["pattern"] = [f"{_article(match)} {match} template needs a pattern."]
    elif match == MatchKind.KEYWORD and not any(w.strip() for w in pattern.split(",")):
        errors["pattern"] = ["List at least one keyword, separated by commas (e.g. price, cost)."]
    if match == MatchKind.REGEX and pattern.strip():
        problem = regex_problem(pattern)
        if problem:
            errors["pattern"] = [problem]
    if not body.strip():
        errors["body"] = ["The reply may not be empty."]
    elif problem := body_problem(body):
        errors["body"] = [problem]
    if errors:
        raise ValidationFailed("The template is not valid; see details.", details=errors)


def body_problem(body: str) -> str | None:
    """Why a reply body may not be saved, or None. Placeholders are bare names."""
    if len(body) > TEXT_MAX_CHARS:
        return f"The reply is longer than WhatsApp allows ({TEXT_MAX_CHARS} characters)."
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        return f"Malformed placeholder: {exc}. Write {{{{ and }}}} for literal braces."
    fields = [(f, spec, conv) for _, f, spec, conv in parsed if f is not None]
    unknown = sorted({"{" + f + "}" for f, _, _ in fields if f not in PLACEHOLDERS})
    if unknown:
        return f"Unknown placeholder(s) {', '.join(unknown)}; use {{name}}, {{number}} or {{tenant}}."
    styled = sorted({f for f, spec, conv in fields if spec or conv})
    if styled:
        return (f"Placeholder(s) {', '.join(styled)} carry a format or conversion (after ':' or '!'); "
                "placeholders are names only, e.g. {name}.")
    return None


def _search_time(compiled: regex.Pattern[str], run: str, tail: str, length: int, *, timeout: float) -> float:
    """Seconds one search takes over `run` repeated to `length`, then `tail` (TimeoutError past `timeout`)."""
    probe = (run * (length // len(run) + 1))[:length] + tail
    # This thread's CPU time, not the wall clock: on a busy host the wall clock also counts the
    # time other processes held the CPU, and the growth check below compares two runs.
    started = time.thread_time()
    compiled.search(probe, timeout=timeout)
    return time.thread_time() - started


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` may not be used, or None: invalid, or too slow on adversarial input."""
    try:
        compiled = regex.compile(pattern, regex.IGNORECASE)
    except regex.error as exc:
        return f"Invalid regular expression: {exc}."
    # Runs of the pattern's own characters and of every character class (\d, \w, \s, ., …),
    # each followed by a character that makes the match fail late.
    runs = [*_PROBE_RUNS, *sorted({c for c in pattern if c.isalnum()})[:8]]
    slow = "This regular expression is pathologically slow (catastrophic backtracking); simplify it."
    deadline = time.monotonic() + SAVE_PROBE_BUDGET_S
    slowest = (0.0, "", "")
    for run in runs:
        for tail in _PROBE_TAILS:
            left = deadline - time.monotonic()
            if left <= 0:
                return slow
            try:
                took = _search_time(compiled, run, tail, PROBE_LENGTH, timeout=min(SAVE_PROBE_TIMEOUT_S, left))
            except TimeoutError:
                return slow
            slowest = max(slowest, (took, run, tail))
    took, run, tail = slowest
    if took >= SUPERLINEAR_MIN_S:
        try:
            took = min(took, *(_search_time(compiled, run, tail, PROBE_LENGTH, timeout=SAVE_PROBE_TIMEOUT_S)
                                for _ in range(2)))
            half = min(_search_time(compiled, run, tail, PROBE_LENGTH // 2, timeout=SAVE_PROBE_TIMEOUT_S)
                       for _ in range(3))
        except TimeoutError:
            return slow
        if took >= SUPERLINEAR_RATIO * half:
            return slow
    return None
