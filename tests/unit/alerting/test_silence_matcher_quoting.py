"""Silence matchers are read as Alertmanager 0.25 and amtool read them
(``pkg/labels/parse.go``): escapes undone, quotes optional, bad quoting refused by name.
The differential check against real amtool and Alertmanager is in
tests/integration/notify/test_silence_matchers_amtool.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.alerting.model import LabelMatcher, Silence, parse_matchers

VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,8}", fullmatch=True)
EQUALITY = st.sampled_from(["=", "!="])
SPACE = st.text(" \t\n", max_size=2)


def alertmanager_text(name: str, op: str, value: str) -> str:
    """A matcher as Alertmanager's ``Matcher.String()`` writes it (OpenMetrics escaping:
    backslash, line feed and double quote)."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{name}{op}"{escaped}"'


@given(NAMES, EQUALITY, VALUES, SPACE, SPACE)
def test_a_matcher_written_as_alertmanager_writes_it_parses_back(
    name: str, op: str, value: str, before: str, after: str,
) -> None:
    matcher = LabelMatcher.parse(before + alertmanager_text(name, op, value) + after)
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)
    assert LabelMatcher.parse(str(matcher)) == matcher  # str() writes it the same way


@given(NAMES, EQUALITY, VALUES)
def test_str_is_alertmanagers_text(name: str, op: str, value: str) -> None:
    assert str(LabelMatcher(name, op, value)) == alertmanager_text(name, op, value)


@pytest.mark.parametrize(("text", "value"), [
    (r'host=~"db\\.example\\.com"', r"db\.example\.com"),  # \\ is one backslash
    (r'job=~"\d+"', r"\d+"),  # any other escape keeps its backslash, as a regex wants
    (r'msg="say \"hi\""', 'say "hi"'),
    (r'msg="two\nlines"', "two\nlines"),
    (r"path=C:\\temp", "C:\\temp"),  # unquoted values are unescaped too
    (r"path=C:\temp", "C:\\temp"),
    (r'tail="ends with \"', None),  # the closing quote is escaped: refused below
    ("q='single'", "'single'"),  # single quotes are the value's own characters
    ('e=""', ""),
    ("e=", ""),
    ('x="a\\', None),
    ("x=\"a\nb\"", "a\nb"),  # a literal line feed is tolerated
    ("x=trailing\\", "trailing\\"),
])
def test_values_read_as_alertmanager_reads_them(text: str, value: str | None) -> None:
    if value is None:
        with pytest.raises(ValueError, match="closing double quote is missing"):
            LabelMatcher.parse(text)
    else:
        assert LabelMatcher.parse(text).value == value


@pytest.mark.parametrize(("text", "message"), [
    ('host="db', "closing double quote is missing"),
    ('host="', "closing double quote is missing"),
    ('host=d"b', "unescaped double quote"),
    ('host="d"b"', "unescaped double quote"),
    ('host=db"', "unescaped double quote"),
    ('host="db\udc80"', "not valid UTF-8"),
])
def test_bad_quoting_is_refused_naming_the_matcher(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        LabelMatcher.parse(text)
    assert repr(text) in str(error.value)


def test_a_silence_with_an_escaped_dot_matches_what_alertmanager_would() -> None:
    """``amtool silence add 'host=~"db\\\\.prod"'`` silences db.prod, not db\\.prod."""
    silence = Silence("s", parse_matchers(['host=~"db\\\\.prod"']), 0.0, 1e12)
    assert silence.matches({"host": "db.prod"}, 1.0)
    assert not silence.matches({"host": "dbxprod"}, 1.0)
    assert not silence.matches({"host": "db\\.prod"}, 1.0)
