"""Fuzzing rule files: any text loads or raises RuleFileError naming the file."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.rules import RuleFileError, parse_rules

VALID = """\
groups:
  - name: g
    rules:
      - alert: a
        expr: cpu > 90
        for: 1m
        labels: {x: y}
"""

_pieces = st.sampled_from([
    "groups:", "\n", "  ", "- ", "name: ", "rules:", "alert: ", "expr: ", "cpu > 1", "for: ",
    "5m", "{", "}", "[", "]", ":", "&a ", "*a", "!!python/object ", "'", '"', "severity: ",
    "warning", "labels: ", "annotations: ", "channels: ", "---", "\t", "#", "1e999", "~",
])


def _check(text: str) -> None:
    try:
        groups = parse_rules(text, "fuzz.yml")
    except RuleFileError as exc:
        assert "fuzz.yml" in str(exc)
        return
    assert isinstance(groups, list)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(_pieces, max_size=40).map("".join))
def test_yaml_soup(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID)), st.text(max_size=5))
def test_mutated_valid_file(at: int, insert: str) -> None:
    _check(VALID[:at] + insert + VALID[at:])
