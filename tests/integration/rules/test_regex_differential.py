"""Differential test of label-matcher regexes against Prometheus' own (promtool 2.42,
Go 1.19's regexp).

Hypothesis strings together fragments of regex syntax, the ones where Go's regexp,
C++ RE2 and Python's ``re`` part ways among them (``(?<n>``, ``\\Q`` without ``\\E``,
``\\C``, ``\\Z``, Unicode 14/15 scripts, possessive and nested repeats, POSIX classes,
look-ahead, back-references). ``promtool check rules`` must accept a rule with the
regex exactly when botmon's rule loader does; for an accepted one, a test file whose
expected alerts are the series botmon's matcher selects (label values with non-ASCII
digits, newlines, case variants, a missing label) must pass both ``promtool test rules``
and ``botmon rules test``.

``BOTMON_DIFF_EXAMPLES`` raises the number of examples for a longer hunt.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import LabelMatcher
from otel_botmon.alerting.rules import RuleFileError, parse_rules
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.services import require_binary

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("BOTMON_DIFF_EXAMPLES", "40"))

FRAGMENTS = st.sampled_from([
    "a", "b", "A", "é", "٣", "1", "_", " ", ".", "-", "\\d", "\\w", "\\s", "\\D", "\\pL",
    "\\pN", "\\p{Greek}", "\\p{Kawi}", "\\p{Toto}", "\\PL", "[", "]", "^", "$", "[:alpha:]",
    "[[:digit:]]", "[^a]", "(", ")", "(?:", "(?i)", "(?s)", "(?i:", "(?P<n>", "(?<n>",
    "(?P<é>", "(?=", "(?!", "|", "*", "+", "?", "{2}", "{1,2}", "{,2}", "{", "}", "*+",
    "??", "\\Q", "\\E", "\\C", "\\Z", "\\z", "\\A", "\\b", "\\1", "\\x41", "\\x{FFFD}",
    "\\n", "\\\\", "\\.", "\\v",
])
PATTERNS = st.lists(FRAGMENTS, min_size=1, max_size=7).map("".join)

# label values that tell the dialects apart: ASCII vs Unicode digits and words, a
# newline for "." and "$", case variants, a U+FFFD, the empty string
VALUES = ["", "a", "b", "ab", "aa", "A", "é", "É", "٣", "1", "a1", "_", " ", "a\n", "\n",
          "Ω", "ab1", "\ufffd", "AB", "-", ".", "\\", "a b", "{2}", "1,2"]


def _rule_doc(pattern: str) -> str:
    expr = "g{a=~" + json.dumps(pattern, ensure_ascii=False) + "}"  # JSON escapes are Go's
    return yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": expr}]}]}, allow_unicode=True)


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def _series(i: int, value: str | None) -> dict[str, str]:
    labels = f'i="{i}"' + ("" if value is None else
                           ", a=" + json.dumps(value))  # \\u escapes: Go reads them
    return {"series": "g{" + labels + "}", "values": "1"}


def _test_doc(matcher: LabelMatcher) -> dict[str, object]:
    values: list[str | None] = [*VALUES, None]  # None: a series without the label
    expected = []
    for i, value in enumerate(values):
        labels = {"i": str(i)} if value is None else {"i": str(i), "a": value}
        if matcher.matches(labels):  # an empty label is no label in Prometheus
            expected.append({"exp_labels": {k: v for k, v in labels.items() if v}})
    return {
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [_series(i, v) for i, v in enumerate(values)],
            "alert_rule_test": [{"eval_time": "0m", "alertname": "A",
                                 "exp_alerts": expected}],
        }],
    }


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pattern=PATTERNS)
def test_botmon_accepts_and_matches_regexes_as_prometheus(pattern: str,
                                                          tmp_path_factory: pytest.TempPathFactory,
                                                          ) -> None:
    where = tmp_path_factory.mktemp("regex")
    text = _rule_doc(pattern)
    (where / "rules.yml").write_text(text, encoding="utf-8")
    checked = _promtool("check", "rules", "rules.yml", cwd=where)
    try:
        parse_rules(text, "rules.yml")
        ours: str | None = None
    except RuleFileError as exc:
        ours = str(exc)
    prometheus = None if checked.returncode == 0 else checked.stdout + checked.stderr
    assert (ours is None) == (prometheus is None), (
        f"regex {pattern!r}\nbotmon: {ours or 'accepted'}\n"
        f"promtool: {prometheus or 'accepted'}")
    if ours is not None:
        return
    doc = _test_doc(LabelMatcher("a", "=~", pattern))
    (where / "test.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    tested = _promtool("test", "rules", "test.yml", cwd=where)
    assert tested.returncode == 0, (f"regex {pattern!r}: promtool disagrees with "
                                    f"botmon's matches\n{tested.stdout}{tested.stderr}")
    report = run_rule_tests(where / "test.yml")
    assert report.ok, report.render()
