"""`botmon rules check` notes every operator that PromQL reads differently: botmon's
matching of a labelless side (found by the differential test against promtool,
``tests/integration/rules/test_differential.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_botmon.alerting.rules_cli import main as rules_main
from otel_botmon.query import compile_condition
from otel_botmon.query.syntax import promql_differences

NOTED = [
    ("my_errors / sum(my_errors)", "/ on() group_left"),
    ("sum(my_errors) / my_errors", "/ on() group_right"),
    ("my_depth > bool avg(my_depth)", "> bool on() group_left"),
    ("my_depth > 3 and count(my_depth) > 2", "and on()"),
    ("my_depth unless sum(my_depth) > 9", "unless on()"),
    ("botmon.exchange.ratelimit.used > cpu * 10", "> on() group_left"),
]
SAME = [
    "my_errors / on() group_left sum(my_errors)",
    "sum(my_errors) / sum(my_calls)",
    "my_depth > 3",
    "my_depth or sum(my_depth)",
    "sum by (q) (my_depth) / my_depth",
    "my_depth * 2 > 1",
    "cpu > 80",
]


@pytest.mark.parametrize(("text", "spelled"), NOTED)
def test_labelless_matching_is_noted(text: str, spelled: str) -> None:
    [(position, note)] = promql_differences(compile_condition(text).tree)
    assert f"'{spelled}'" in note
    assert text[position] in "/>au"


@pytest.mark.parametrize("text", SAME)
def test_promql_matching_is_not_noted(text: str) -> None:
    assert promql_differences(compile_condition(text).tree) == []


def test_rules_check_prints_the_note_at_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "r.yml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - alert: Ratio\n"
                    "        expr: my_errors / sum(my_errors) > 0.5\n")
    assert rules_main(["rules", "check", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"note: {path}:5:25: groups[0].rules[0].expr: '/' applies")
