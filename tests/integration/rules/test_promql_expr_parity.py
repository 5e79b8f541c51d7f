"""promql_expr_test: botmon and promtool accept the same expected samples, metric names
included where PromQL keeps them (selectors, filtering comparisons, `and`, `or`) and
dropped where it drops them (arithmetic, functions, `bool`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.promexport import to_promql
from otel_botmon.alerting.rules import RuleFileError
from otel_botmon.alerting.ruletest import run_rule_tests
from tests.services import require_binary

pytestmark = pytest.mark.integration

G = "botmon_health_status"
SERIES = [
    {"series": f'{G}{{a="x"}}', "values": "1 2 3"},
    {"series": f'{G}{{a="y"}}', "values": "5 5 5"},
    {"series": 'other{a="x"}', "values": "4 4 4"},
    {"series": 'other{a="z"}', "values": "7 7 7"},
]
# (expression in the condition language, expected samples at 2m)
EXPRS: list[tuple[str, list[tuple[str, float]]]] = [
    ("botmon.health.status", [(f'{G}{{a="x"}}', 3), (f'{G}{{a="y"}}', 5)]),
    ("botmon.health.status > 4", [(f'{G}{{a="y"}}', 5)]),
    ("4 < botmon.health.status", [(f'{G}{{a="y"}}', 5)]),
    ("botmon.health.status + 1", [('{a="x"}', 4), ('{a="y"}', 6)]),
    ("botmon.health.status > bool 4", [('{a="x"}', 0), ('{a="y"}', 1)]),
    ("botmon.health.status and other", [(f'{G}{{a="x"}}', 3)]),
    ("botmon.health.status or other", [(f'{G}{{a="x"}}', 3), (f'{G}{{a="y"}}', 5),
                                       ('other{a="z"}', 7)]),
    ("botmon.health.status unless other", [(f'{G}{{a="y"}}', 5)]),
    ("sum without (a) (botmon.health.status)", [("{}", 8)]),
    ("max(botmon.health.status[2m])", [('{a="x"}', 3), ('{a="y"}', 5)]),
    ("botmon.health.status / on(a) other", [('{a="x"}', 0.75)]),
    ("abs(botmon.health.status - 4)", [('{a="x"}', 1), ('{a="y"}', 1)]),
]


def _doc(rule_file: str, translate: bool) -> dict[str, Any]:
    tests = []
    for expr, samples in EXPRS:
        tests.append({
            "expr": to_promql(expr, per_bot=()) if translate else expr,
            "eval_time": "2m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        })
    return {"rule_files": [rule_file], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": SERIES, "promql_expr_test": tests}]}


def test_expression_samples_agree_with_promtool(tmp_path: Path) -> None:
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    botmon_file = tmp_path / "botmon.test.yml"
    botmon_file.write_text(yaml.safe_dump(_doc("empty.rules.yml", False)))
    report = run_rule_tests(botmon_file)
    assert report.ok and report.checks == len(EXPRS), report.render()
    prom_file = tmp_path / "prom.test.yml"
    prom_file.write_text(yaml.safe_dump(_doc("empty.rules.yml", True)))
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", prom_file.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_sample_fails_in_both(tmp_path: Path) -> None:
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    for translate, name in ((False, "botmon.test.yml"), (True, "prom.test.yml")):
        doc = _doc("empty.rules.yml", translate)
        doc["tests"][0]["promql_expr_test"][1]["exp_samples"][0]["labels"] = '{a="y"}'
        (tmp_path / name).write_text(yaml.safe_dump(doc))
    assert not run_rule_tests(tmp_path / "botmon.test.yml").ok
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", "prom.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0


# PromQL written as PromQL: the same text to botmon and to promtool, for the spellings of
# its lexer (Go number and string literals, keywords in any case, comments)
VERBATIM_SERIES = [
    {"series": 'my_depth{q="a"}', "values": "9 9 9"},
    {"series": 'my_depth{q="b"}', "values": "1 1 1"},
    {"series": 'other{q="a"}', "values": "4 4 4"},
]
_A = ('my_depth{q="a"}', 9.0)
VERBATIM: list[tuple[str, list[tuple[str, float]]]] = [
    ("my_depth > 010", [_A]),  # octal: 8
    ("my_depth == 011", [_A]),  # octal: 9
    ("my_depth > 0009.5", []),  # not octal (a fraction): 9.5
    ("my_depth == 0x9", [_A]),
    ("my_depth == 0XA - 1", [_A]),
    ("SUM(my_depth)", [("{}", 10)]),
    ("Sum BY (q) (my_depth)", [('{q="a"}', 9), ('{q="b"}', 1)]),
    ("count(my_depth) WITHOUT (q)", [("{}", 2)]),
    ("my_depth AND other", [_A]),
    ("my_depth UNLESS ON(q) other", [('my_depth{q="b"}', 1)]),
    ("my_depth > BOOL 5", [('{q="a"}', 1), ('{q="b"}', 0)]),
    ("my_depth - IGNORING(zz) GROUP_LEFT other", [('{q="a"}', 5)]),
    ("my_depth{q=`a`}", [_A]),
    ("my_depth{q=~`[a]`}", [_A]),
    ('my_depth{q="\\x61"}', [_A]),
    ('my_depth{q="\\u0061"}', [_A]),
    ('my_depth{q="\\U00000061"}', [_A]),
    ('my_depth{q="\\141"}', [_A]),
    ("my_depth{q='a'}", [_A]),
    ("my_depth{q='\\''}", []),
    ("my_depth > 5 # a deep queue", [_A]),
    ("my_depth # the queue\n  > 5", [_A]),
    ('my_depth{q="#"} # not a comment inside quotes', []),
    # an empty on()/ignoring() beside a number is dropped, as in Prometheus
    ("my_depth > on() 5", [_A]),
    ("my_depth > bool ignoring() group_left 5", [('{q="a"}', 1), ('{q="b"}', 0)]),
    ("10 - on() group_right() my_depth", [('{q="a"}', 1), ('{q="b"}', 9)]),
]
# PromQL that promtool refuses: botmon refuses it too (message words)
VERBATIM_REFUSED: list[tuple[str, str]] = [
    ("my_depth > 1e400", "out of range"),
    ('my_depth{__name__=~"my_.*"}', "metric name must not be set twice"),
    ("my_depth > 0x", "hexadecimal"),
    ('my_depth{q="\\\'"}', "escape"),
    ("my_depth{q='\\\"'}", "escape"),
    ('my_depth{q="\\x6"}', "escape"),
    ('my_depth{q="\\400"}', "escape"),
    ('my_depth{q="\\ud800"}', "escape"),
    ('my_depth{q=~"\\\\C"}', "invalid escape sequence: \\C"),  # C++ RE2 takes it
    ("my_depth > on(q) 5", "needs series on both sides"),
]


def _verbatim_doc(expr: str, samples: list[tuple[str, float]]) -> dict[str, Any]:
    return {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": VERBATIM_SERIES, "promql_expr_test": [
                {"expr": expr, "eval_time": "2m", "exp_samples": [
                    {"labels": labels, "value": value} for labels, value in samples]}]}]}


def _both(tmp_path: Path, doc: dict[str, Any]) -> tuple[Any, subprocess.CompletedProcess[str]]:
    (tmp_path / "empty.rules.yml").write_text("groups: []\n")
    path = tmp_path / "verbatim.test.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    report = run_rule_tests(path)
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", path.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    return report, proc


@pytest.mark.parametrize(("expr", "samples"), VERBATIM, ids=[e for e, _ in VERBATIM])
def test_promql_spellings_agree_with_promtool(expr: str, samples: list[tuple[str, float]],
                                              tmp_path: Path) -> None:
    report, proc = _both(tmp_path, _verbatim_doc(expr, samples))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.ok and report.checks == 1, report.render()


@pytest.mark.parametrize(("expr", "words"), VERBATIM_REFUSED,
                         ids=[e for e, _ in VERBATIM_REFUSED])
def test_promql_promtool_refuses_is_refused(expr: str, words: str, tmp_path: Path) -> None:
    report, proc = _both(tmp_path, _verbatim_doc(expr, []))
    assert proc.returncode != 0 and "parse error" in proc.stdout + proc.stderr
    assert not report.ok and words in report.render(), report.render()


def test_an_eval_time_between_evaluations_sees_what_promtool_loaded(tmp_path: Path) -> None:
    """promtool loads the input samples up to each step of its evaluation loop, which
    stops at the last evaluation_interval at or before the latest eval_time: a
    promql_expr_test at 2m40s (interval 15s, evaluations every 1m) sees the samples up to
    2m, not those at 2m15s and 2m30s."""
    doc = {"rule_files": ["empty.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "15s",
        "input_series": [{"series": 'my_count{q="a"}', "values": "0+1x20"}],
        "promql_expr_test": [
            {"expr": "my_count", "eval_time": "2m40s",
             "exp_samples": [{"labels": 'my_count{q="a"}', "value": 8}]},
            {"expr": "count_over_time(my_count[1m])", "eval_time": "2m40s",
             "exp_samples": [{"labels": '{q="a"}', "value": 2}]},
            {"expr": "my_count", "eval_time": "1m30s",
             "exp_samples": [{"labels": 'my_count{q="a"}', "value": 6}]},
        ]}]}
    report, proc = _both(tmp_path, doc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.ok and report.checks == 3, report.render()


# the metric name of a series that came through `or` below a comparison that changed its
# labels (`ignoring(b)` drops b, `group_left(c)` copies c): the side of the `or` it came
# from, found on its other labels
OR_NAME_SERIES = [
    {"series": 'm1{a="x",b="1"}', "values": "1 2 3 4"},
    {"series": 'm1{a="y",b="1"}', "values": "5 6 7 8"},
    {"series": 'm3{a="z",b="2"}', "values": "0 0 9 9"},
    {"series": 'm2{a="x",c="k"}', "values": "3 3 3 3"},
    {"series": 'm2{a="y",c="j"}', "values": "1 1 1 1"},
    {"series": 'm2{a="z",c="i"}', "values": "1 1 1 1"},
]
OR_NAME: list[tuple[str, list[tuple[str, float]]]] = [
    ("(m1 or m3) > on(a) group_left(c) m2", [
        ('m1{a="x",b="1",c="k"}', 4), ('m1{a="y",b="1",c="j"}', 8),
        ('m3{a="z",b="2",c="i"}', 9)]),
    ("(m1 or m3) > ignoring(b, c) m2", [
        ('m1{a="x"}', 4), ('m1{a="y"}', 8), ('m3{a="z"}', 9)]),
    ("m2 < on(a) group_right(c) (m1 or m3)", [
        ('m1{a="x",b="1",c="k"}', 3), ('m1{a="y",b="1",c="j"}', 1),
        ('m3{a="z",b="2",c="i"}', 1)]),
    ("(min_over_time(m3[3m]) or m1) <= ignoring(b, c) group_left(c) m2", [
        ('{a="z",b="2",c="i"}', 0)]),
]


@pytest.mark.parametrize(("expr", "samples"), OR_NAME, ids=[e for e, _ in OR_NAME])
def test_metric_name_through_or_under_changed_labels(
        expr: str, samples: list[tuple[str, float]], tmp_path: Path) -> None:
    doc = _verbatim_doc(expr, samples)
    doc["tests"][0]["input_series"] = OR_NAME_SERIES
    doc["tests"][0]["promql_expr_test"][0]["eval_time"] = "3m"
    report, proc = _both(tmp_path, doc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.ok and report.checks == 1, report.render()


# an `and`/`unless` whose left side has no series still evaluates its right side, as
# PromQL does: a vector matching there that fails fails the expression
FAILING_RIGHT = [
    "my_depth{q=\"none\"} and (my_depth + on() other)",
    "my_depth{q=\"none\"} unless (my_depth > on() my_depth)",
    "my_depth{q=\"none\"} and sum(other + on() group_left my_depth)",
]


@pytest.mark.parametrize("expr", FAILING_RIGHT)
def test_a_failing_right_side_of_and_fails_with_an_empty_left(expr: str,
                                                             tmp_path: Path) -> None:
    report, proc = _both(tmp_path, _verbatim_doc(expr, []))
    assert proc.returncode != 0 and "matching" in proc.stdout + proc.stderr, proc.stdout
    assert not report.ok and "err:" in report.render(), report.render()


def test_rules_evaluated_more_often_than_samples_keep_every_point(tmp_path: Path) -> None:
    """With `evaluation_interval` shorter than the input `interval`, a recorded series
    and ALERTS get more points than any input series: all of them stay queryable."""
    (tmp_path / "rec.rules.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - record: rec\n    expr: my_count * 2\n"
        "  - alert: Up\n    expr: my_count > 0\n")
    doc = {"rule_files": ["rec.rules.yml"], "evaluation_interval": "15s", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'my_count{q="a"}', "values": "1+1x6"}],
        "promql_expr_test": [
            {"expr": "count_over_time(rec[10m])", "eval_time": "3m",
             "exp_samples": [{"labels": '{q="a"}', "value": 13}]},
            {"expr": "min_over_time(rec[10m])", "eval_time": "3m",
             "exp_samples": [{"labels": '{q="a"}', "value": 2}]},
            {"expr": "ALERTS", "eval_time": "0s", "exp_samples": [
                {"labels": 'ALERTS{alertname="Up",alertstate="firing",q="a"}', "value": 1}]},
            {"expr": "count_over_time(ALERTS[5m])", "eval_time": "3m", "exp_samples": [
                {"labels": '{alertname="Up",alertstate="firing",q="a"}', "value": 13}]},
        ]}]}
    path = tmp_path / "rec.test.yml"
    path.write_text(yaml.safe_dump(doc))
    report = run_rule_tests(path)
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", path.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.ok and report.checks == 4, report.render()


def test_a_recording_rule_label_set_empty_removes_the_label(tmp_path: Path) -> None:
    """As in Prometheus, `labels: {b: ""}` on a recording rule removes `b` from the
    recorded series (which then match series without `b`), rather than keeping b=""."""
    (tmp_path / "rec.rules.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - record: rec\n    expr: my_depth\n"
        "    labels: {q: '', team: quant, other: ''}\n")
    doc = {"rule_files": ["rec.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'my_depth{q="a"}', "values": "3 3 3"},
                         {"series": 'base{team="quant"}', "values": "1 1 1"}],
        "promql_expr_test": [
            {"expr": "rec", "eval_time": "2m",
             "exp_samples": [{"labels": 'rec{team="quant"}', "value": 3}]},
            {"expr": "rec - base", "eval_time": "2m",
             "exp_samples": [{"labels": '{team="quant"}', "value": 2}]},
        ]}]}
    path = tmp_path / "rec.test.yml"
    path.write_text(yaml.safe_dump(doc))
    report = run_rule_tests(path)
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", path.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report.ok and report.checks == 2, report.render()


@pytest.mark.parametrize("rule", ["record: rec\n    expr: my_depth",
                                  "alert: Deep\n    expr: my_depth > 1"])
def test_a_rule_label_named_name_is_refused_as_promtool_refuses_it(rule: str,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "r.rules.yml").write_text(
        f"groups:\n- name: g\n  rules:\n  - {rule}\n    labels: {{__name__: zz}}\n")
    doc = {"rule_files": ["r.rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": 'my_depth{q="a"}', "values": "3"}],
        "promql_expr_test": [{"expr": "my_depth", "eval_time": "0m", "exp_samples": [
            {"labels": 'my_depth{q="a"}', "value": 3}]}]}]}
    path = tmp_path / "r.test.yml"
    path.write_text(yaml.safe_dump(doc))
    binary = require_binary("promtool", "/usr/bin/promtool")
    proc = subprocess.run([binary, "test", "rules", path.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "invalid label name" in proc.stdout + proc.stderr
    with pytest.raises(RuleFileError, match=r"r\.rules\.yml:6:14: .*invalid label name"):
        run_rule_tests(path)
