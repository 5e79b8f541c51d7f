"""Rule and rule-test files have a size cap, checked before any parsing: a file larger
than yamlnodes.MAX_FILE_BYTES is refused at once, naming the file and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting import ruletest, yamlnodes
from otel_botmon.alerting.rules import RuleFileError, load_rule_groups, parse_rules
from otel_botmon.alerting.ruletest_file import RuleTestError

RULES = """groups:
  - name: g
    rules:
      - alert: HighCpu
        expr: system.cpu.utilization > 90
"""


def test_a_file_over_the_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yml"
    # not even YAML: the size is checked first, so the error is about the size
    path.write_bytes(b"groups: [\x01" * (yamlnodes.MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(RuleFileError) as info:
        load_rule_groups(path)
    message = str(info.value)
    assert message.startswith(f"{path}: larger than 4 MiB ({yamlnodes.MAX_FILE_BYTES} bytes)")
    assert "invalid YAML" not in message


def test_valid_rules_padded_past_the_cap_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "padded.yml"
    padding = "#" * 1023 + "\n"
    path.write_text(RULES + padding * (yamlnodes.MAX_FILE_BYTES // 1024 + 1))
    with pytest.raises(RuleFileError, match="larger than 4 MiB"):
        load_rule_groups(path)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.integers(-40, 40), wide=st.booleans())
def test_the_cap_counts_utf8_bytes_and_admits_a_file_of_exactly_the_limit(
    extra: int, wide: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 1000
    monkeypatch.setattr(yamlnodes, "MAX_FILE_BYTES", limit)
    char = "é" if wide else "x"  # two bytes in UTF-8, one character
    filler = limit + extra - len(RULES) - 2
    text = RULES + "#" + char * (filler // len(char.encode())) + "\n"
    size = len(text.encode())
    path = tmp_path / "rules.yml"
    path.write_text(text, encoding="utf-8")
    for load in (lambda: load_rule_groups(path), lambda: parse_rules(text, str(path))):
        if size <= limit:
            assert [g.name for g in load()] == ["g"]
        else:
            with pytest.raises(RuleFileError, match="larger than"):
                load()


def test_a_rule_test_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tests.yml"
    path.write_bytes(b"#" * (yamlnodes.MAX_FILE_BYTES + 1))
    with pytest.raises(RuleTestError, match=r"tests\.yml: larger than 4 MiB"):
        ruletest.run_rule_tests(path)
