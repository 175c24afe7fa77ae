"""Reply templates: matching order, placeholders, and what may be saved."""

from __future__ import annotations

import pytest

from flowhq.errors import ValidationFailed
from tenants import templates
from tenants.templates import CompiledTemplates, Template, regex_problem, render, validate_template


def t(id: int, match: str, pattern: str = "", body: str = "", priority: int = 0) -> Template:
    return Template(id=id, match=match, pattern=pattern, body=body or f"reply {id}", priority=priority)


TEMPLATES = CompiledTemplates([
    t(1, "default"),
    t(2, "regex", r"order\s+#?(\d+)"),
    t(3, "keyword", "hours, open"),
    t(4, "exact", "Menu"),
    t(5, "keyword", "hours", priority=5),
])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("menu", 4),
        ("  MENU  ", 4),
        ("menu please", 1),
        ("what are your hours?", 5),
        ("are you open today", 3),
        ("reopening soon?", 1),
        ("where is order #42", 2),
        ("ORDER 7", 2),
        ("hello", 1),
    ],
)
def test_exact_beats_keyword_beats_regex_beats_default(text, expected):
    assert TEMPLATES.match(text).id == expected


def test_no_default_means_no_match():
    assert CompiledTemplates([t(1, "exact", "hi")]).match("hello") is None


def test_a_slow_regex_that_slipped_in_is_skipped_at_match_time_not_hung_on():
    templates = CompiledTemplates([t(1, "regex", r"(a+)+$"), t(2, "default")])
    assert templates.match("a" * 5000 + "!").id == 2


def test_placeholders_are_filled_and_unknown_ones_left_alone():
    assert render("Hi {name} from {tenant} ({number}) {other}", name="Ann", number="49170", tenant="Café") == (
        "Hi Ann from Café (49170) {other}")
    assert render("Hi {name}", name="", number="49170", tenant="x") == "Hi 49170"
    assert render("broken {", name="a", number="b", tenant="c") == "broken {"


@pytest.mark.parametrize(
    ("match", "pattern", "body", "field"),
    [
        ("regex", "(unclosed", "x", "pattern"),
        ("regex", r"(a+)+$", "x", "pattern"),
        ("regex", r"(\w+\s?)+$", "x", "pattern"),
        ("keyword", "", "x", "pattern"),
        ("exact", "   ", "x", "pattern"),
        ("default", "", "", "body"),
        ("default", "", "Hi {nmae}", "body"),
        ("default", "", "Hi {", "body"),
        # A format spec would let one message build a gigabyte, or read attributes.
        ("default", "", "Hi {name:>999999999}", "body"),
        ("default", "", "{name:>{number}}", "body"),
        ("default", "", "{name:{name.__class__}}", "body"),
        ("default", "", "{name!r}", "body"),
        ("default", "", "{name.__class__}", "body"),
        ("default", "", "{number[0]}", "body"),
        ("default", "", "x" * 65537, "body"),
        # Slow on runs of the classes they loop over, not on their own characters.
        ("regex", r"(\d+)+$", "x", "pattern"),
        ("regex", r"^(\d|\d\d)+$", "x", "pattern"),
        ("regex", r"(\s+)+$", "x", "pattern"),
        ("regex", r"([a-z]+)*\d$", "x", "pattern"),
        ("regex", r"(.*a){12}", "x", "pattern"),
        ("keyword", ",,,", "x", "pattern"),
        ("keyword", " , ,", "x", "pattern"),
    ],
)
def test_bad_templates_are_refused_with_the_field_named(match, pattern, body, field):
    with pytest.raises(ValidationFailed) as caught:
        validate_template(match=match, pattern=pattern, body=body)
    assert field in caught.value.details


@pytest.mark.parametrize("pattern", [r"(.*a){12}", r"(\w+\s?)+$"])
def test_backtracking_is_refused_by_how_it_grows_not_by_how_fast_this_machine_is(pattern, monkeypatch):
    # A machine fast enough to run every probe within the budget still sees time grow faster than the text.
    monkeypatch.setattr(templates, "SAVE_PROBE_BUDGET_S", 60.0)
    assert regex_problem(pattern) is not None
    for fine in (r".*hello.*", r"order\s+#?\d+", r"^.*(menu|card).*$", r"\b(open|hours?)\b.*\?"):
        assert regex_problem(fine) is None, fine


def test_a_reply_is_filled_in_by_substitution_and_cut_to_whatsapps_limit():
    assert render("{name}{{name}}{number}", name="Ann", number="49", tenant="T") == "Ann{name}49"
    # Whatever a name holds is text, never a format or a placeholder of its own.
    assert render("Hi {name}", name="{number:>99}", number="49", tenant="T") == "Hi {number:>99}"
    assert len(render("{tenant}" * 20, name="", number="", tenant="x" * 10_000)) == 65536


def test_one_slow_regex_costs_a_no_match_in_bounded_time():
    """An old template saved before the checks: matching gives up on it, within the budget."""
    import time

    templates = CompiledTemplates([t(n, "regex", r"(\d+)+$") for n in range(100)] + [t(999, "exact", "1")])
    started = time.monotonic()
    assert templates.match("1" * 3000 + "!") is None
    assert time.monotonic() - started < 1.5
    assert templates.match("1").id == 999


def test_good_templates_pass():
    validate_template(match="regex", pattern=r"order\s+#?(\d+)", body="Thanks {name}")
    validate_template(match="default", pattern="", body="Hi {name}, {{literal}} braces")
    assert regex_problem(r"^\d{3}-\d{4}$") is None


@pytest.mark.parametrize(("match", "says"), [("exact", "An exact template"), ("keyword", "A keyword template"),
                                         ("regex", "A regex template")])
def test_a_template_without_a_pattern_is_refused_in_good_grammar(match, says):
    with pytest.raises(ValidationFailed) as caught:
        validate_template(match=match, pattern="", body="Hi")
    assert caught.value.details["pattern"] == [f"{says} needs a pattern."]
