"""docs/conditions.md documents every derived value and function the language knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_botmon.query import compile_condition
from otel_botmon.query._catalog import (
    AGGREGATIONS,
    DERIVED,
    OTHER_FUNCTIONS,
    QUANTILE_SHORTHANDS,
    RATE_FUNCTIONS,
)

DOC = (Path(__file__).parents[3] / "docs" / "conditions.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_every_derived_value_is_documented_with_its_definition(name: str) -> None:
    assert f"| `{name}` |" in DOC
    assert f"`{DERIVED[name].definition}`" in DOC
    compile_condition(f"{name} > 0")


@pytest.mark.parametrize(
    "name", [*RATE_FUNCTIONS, *AGGREGATIONS, *QUANTILE_SHORTHANDS, *OTHER_FUNCTIONS]
)
def test_every_function_is_documented(name: str) -> None:
    assert f"`{name}(" in DOC or f"`{name}`" in DOC or f" `{name}` " in DOC


def test_rules_doc_examples_run(tmp_path: Path) -> None:
    from otel_botmon.alerting.ruletest import run_rule_tests

    text = (Path(__file__).parents[3] / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    rule_file = next(b for b in blocks if b.startswith("groups:"))
    test_file = next(b for b in blocks if b.startswith("rule_files:"))
    (tmp_path / "rules.yml").write_text(rule_file, encoding="utf-8")
    (tmp_path / "rules.test.yml").write_text(test_file, encoding="utf-8")
    report = run_rule_tests(tmp_path / "rules.test.yml")
    assert report.ok and report.checks == 1, report.render()
