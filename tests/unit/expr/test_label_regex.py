"""Label-matcher regexes (rule conditions and silences) run in time linear in the label
value whatever the pattern, and accept exactly the syntax Prometheus 2.42 (Go 1.19's
regexp) accepts. The differential check against promtool is in
tests/integration/rules/test_regex_differential.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule, LabelMatcher, Silence, parse_matchers
from otel_botmon.alerting.rules import RuleFileError, parse_rules
from otel_botmon.query import MetricHistory, RuleSyntaxError, compile_condition

METRIC, LABEL = "botmon.health.status", "health.component"

# the classic catastrophic-backtracking shapes, each with the value that hurts a
# backtracking engine (a long run that almost matches)
CLASSIC = [
    (r"(a+)+$", "a", "!"),
    (r"(a|aa)*c", "a", "!"),
    (r"(a*)*b", "a", "!"),
    (r"(a|a)*b", "a", "!"),
    (r"(.*a){12}", "a", "!"),
    (r"(\w+\s?)*$", "ab ", "!"),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "aaaa", "!"),
    (r"(?:a?){30}a{30}", "a", "!"),
    (r"((ab)*|a)*c", "ab", "a"),
    (r"(x+x+)+y", "x", "!"),
    (r"([ab]*a[ab]{20})+", "ab", "!"),
    # capturing groups: RE2 tracks submatches in its (slower) NFA past a few KB
    (r"((ab|[ab]|b){2,}([ab])*(?:(?:)|a?)*?|(.|ab)*(?:aa|\w)*|(\w)+?([ab]|[ab]|\w)+"
     r"((?:.|\w|a?)+)?ab)*?$", "a", "!"),
]


def _best_of(runs: int, call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _silence_path(pattern: str) -> Callable[[str], Callable[[], object]]:
    # the matcher text as the dashboard API and `botmon silence add` pass it
    silence = Silence("s", parse_matchers([f'{LABEL}=~"{pattern}"']), 0.0, 1e12)
    return lambda value: lambda: silence.matches({LABEL: value}, 1.0)


def _rule_path(pattern: str) -> Callable[[str], Callable[[], object]]:
    quoted = pattern.replace("\\", "\\\\")  # a Go string in the condition
    condition = f'{METRIC}{{{LABEL}=~"{quoted}"}} >= 0'

    def for_value(value: str) -> Callable[[], object]:
        history = MetricHistory()
        history.add_point(METRIC, {LABEL: value}, 1.0, 0.0)
        evaluator = AlertEvaluator([AlertRule("r", condition)], history,
                                   publish_telemetry=False)
        return lambda: evaluator.evaluate(1.0, dispatch=False)

    return for_value


PATHS = {"silence": _silence_path, "rule": _rule_path}


def _assert_linear(path: str, pattern: str, unit: str, tail: str, n: int = 2000) -> None:
    """The time for a value 8n long is at most what linear growth allows (with room for
    noise), compared with the time for n in the same run."""
    build = PATHS[path](pattern)
    short, long = unit * (n // len(unit)) + tail, unit * (8 * n // len(unit)) + tail
    run_short, run_long = build(short), build(long)
    run_short()  # compile and warm the caches outside the timing
    t_short, t_long = _best_of(3, run_short), _best_of(3, run_long)
    assert t_long <= 32 * max(t_short, 50e-6), (path, pattern, t_short, t_long)


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(("pattern", "unit", "tail"), CLASSIC, ids=[c[0] for c in CLASSIC])
def test_classic_redos_shapes_match_in_linear_time(path: str, pattern: str, unit: str,
                                                   tail: str) -> None:
    _assert_linear(path, pattern, unit, tail)


_ATOMS = st.sampled_from(["a", "b", "aa", "ab", ".", "[ab]", r"\w", "a?", "(?:)"])
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{1,3}", "{2,}", "*?", "+?", ""])


def _nested(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return _ATOMS
    inner = _nested(depth - 1)
    group = st.tuples(st.lists(inner, min_size=1, max_size=3), _QUANTIFIERS,
                      st.booleans()).map(
        lambda t: ("(" if t[2] else "(?:") + "|".join(t[0]) + ")" + t[1])
    concat = st.lists(st.one_of(inner, group), min_size=1, max_size=3).map("".join)
    return st.one_of(inner, group, concat)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.tuples(_nested(3), st.sampled_from(["", "$", "c", "b$"])).map("".join),
       unit=st.text(alphabet="ab", min_size=1, max_size=3),
       tail=st.sampled_from(["", "!", "c", "b", "a"]),
       path=st.sampled_from(sorted(PATHS)))
def test_nested_quantifiers_match_in_linear_time(pattern: str, unit: str, tail: str,
                                                 path: str) -> None:
    try:
        LabelMatcher(LABEL, "=~", pattern)
    except ValueError:  # e.g. a repeat of an empty group Go refuses
        assume(False)
    _assert_linear(path, pattern, unit, tail, n=1000)


# --- syntax: what Go 1.19's regexp (Prometheus 2.42) refuses is refused -----------------

GO_REFUSES = {
    # pattern: a fragment of the error
    r"(?<n>a)": "(?<",  # Go 1.22+ only
    r"x(?<n>a)": "(?<",
    r"(?P<é>x)": "invalid named capture",  # Go: ASCII word characters only
    r"\p{Kawi}": r"\p{Kawi}",  # Unicode 15 script; Go 1.19 has Unicode 13
    r"[\P{Toto}a]": r"\P{Toto}",
    r"\p{^Vithkuqi}": "Vithkuqi",
    r"\Qab": "\\Q without \\E",  # the open \Q swallows the ")$" of ^(?:...)$
    r"(?i)a\Q": "\\Q without \\E",
    r"[]\C]": r"\C",
    r"\C": r"\C",
    r"\Z": r"\Z",
    r"a*+": "*+",
    r"(?=a)": "(?=",
    r"(a)\1": r"\1",
}


@pytest.mark.parametrize("pattern", sorted(GO_REFUSES))
def test_syntax_prometheus_refuses_is_refused_by_the_matcher(pattern: str) -> None:
    with pytest.raises(ValueError) as info:
        LabelMatcher(LABEL, "=~", pattern)
    assert GO_REFUSES[pattern] in str(info.value)
    assert f"{LABEL}=~" in str(info.value)  # names the matcher


@pytest.mark.parametrize("pattern", sorted(GO_REFUSES))
def test_syntax_prometheus_refuses_is_a_rule_file_error_at_its_position(pattern: str) -> None:
    quoted = pattern.replace("\\", "\\\\")
    text = ("groups:\n  - name: g\n    rules:\n      - alert: A\n"
            f"        expr: '{METRIC}{{{LABEL}=~\"{quoted}\"}} > 1'\n")
    with pytest.raises(RuleFileError) as info:
        parse_rules(text, "rules.yml")
    column = text.splitlines()[4].index('"') + 1
    assert (info.value.line, info.value.column) == (5, column), str(info.value)
    assert str(info.value).startswith(f"rules.yml:5:{column}"), str(info.value)


@pytest.mark.parametrize("pattern", [
    r"[(?<]", r"\Q(?<n>\E", r"[\p{Greek}]", r"(?P<n_1>a)", r"\Qa\E", r"\Q\Ea", r"\Q\C\E",
    r"\\C", r"[[:alpha:]\p{Han}]", r"\pL", r"\p{Yezidi}", r"(?i)a\Qb\E",
])
def test_syntax_prometheus_accepts_is_accepted(pattern: str) -> None:
    compile_condition(f'{METRIC}{{{LABEL}=~"{pattern.replace(chr(92), chr(92) * 2)}"}} > 1')


def test_condition_error_names_the_regex_position() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition(f'{METRIC}{{{LABEL}=~"(?<n>a)"}} > 1')
    assert "(?<" in str(info.value)


# --- label values that are not valid Unicode text ------------------------------------


def test_a_lone_surrogate_in_a_label_value_does_not_break_a_silence() -> None:
    """A value such as bytes decoded with surrogateescape: the code point reads as
    U+FFFD (as Go reads a byte that is not UTF-8) instead of raising."""
    silence = Silence("s", parse_matchers([f'{LABEL}=~"x."']), 0.0, 1e12)
    assert silence.matches({LABEL: "x\udc80"}, 1.0)
    assert not silence.matches({LABEL: "y\udc80"}, 1.0)
    assert LabelMatcher(LABEL, "=~", "x\\x{FFFD}").matches({LABEL: "x\ud800"})


def test_a_lone_surrogate_in_one_series_does_not_stop_the_rule() -> None:
    history = MetricHistory()
    history.add_point(METRIC, {LABEL: "x\udc80"}, 2.0, 0.0)
    history.add_point(METRIC, {LABEL: "yy"}, 2.0, 0.0)
    evaluator = AlertEvaluator([AlertRule("r", f'{METRIC}{{{LABEL}=~"y.*"}} >= 0')],
                               history, publish_telemetry=False)
    evaluator.evaluate(1.0, dispatch=False)
    assert [a.labels.get(LABEL) for a in evaluator.firing()] == ["yy"]
