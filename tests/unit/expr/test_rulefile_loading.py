"""YAML rule files: the format, and errors with file, line, column and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import AlertSeverity, AlertType, NotificationChannel
from otel_botmon.alerting.rules import RuleFileError, load_rule_file, load_rule_groups, parse_rules

GOOD = """\
groups:
  - name: trading
    interval: 10s
    rules:
      - alert: SlowTrades
        expr: p95(botmon.trade.duration[5m]) > 2s
        for: 1m
        keep_firing_for: 2m
        severity: warning
        type: trading
        description: Trades are slow
        cooldown: 10m
        escalation: 30m
        channels: [slack, email]
        escalation_channels: [pagerduty]
        recovery_threshold: 1.5
        labels: {team: quant, tier: 1}
        annotations: {summary: "p95 trade latency {value:.2f} s"}
      - name: LowWinRate
        condition: win_rate < 50
        cooldown_minutes: 30
        escalation_minutes: 60
  - name: system
    rules:
      - alert: HighCpu
        expr: |
          cpu > 90
        severity: CRITICAL
        enabled: false
"""


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_every_field(tmp_path: Path) -> None:
    groups = load_rule_groups(write(tmp_path, GOOD))
    assert [g.name for g in groups] == ["trading", "system"]
    assert groups[0].interval_s == 10.0 and groups[1].interval_s is None
    slow, win = groups[0].rules
    assert slow.name == "SlowTrades"
    assert slow.condition == "p95(botmon.trade.duration[5m]) > 2s"
    assert (slow.for_, slow.keep_firing_for) == (60.0, 120.0)
    assert slow.severity is AlertSeverity.WARNING and slow.alert_type is AlertType.TRADING
    assert (slow.cooldown_minutes, slow.escalation_minutes) == (10.0, 30.0)
    assert slow.channels == [NotificationChannel.SLACK, NotificationChannel.EMAIL]
    assert slow.escalation_channels == [NotificationChannel.PAGERDUTY]
    assert slow.recovery_threshold == 1.5
    assert slow.labels == {"team": "quant", "tier": "1"}
    assert slow.annotations == {"summary": "p95 trade latency {value:.2f} s"}
    assert (win.name, win.condition) == ("LowWinRate", "win_rate < 50")
    assert (win.cooldown_minutes, win.escalation_minutes) == (30.0, 60.0)
    [cpu] = groups[1].rules
    assert cpu.severity is AlertSeverity.CRITICAL and cpu.enabled is False
    assert cpu.condition.strip() == "cpu > 90"
    assert [r.name for r in load_rule_file(write(tmp_path, GOOD))] == [
        "SlowTrades", "LowWinRate", "HighCpu",
    ]


def error_of(tmp_path: Path, text: str) -> RuleFileError:
    path = write(tmp_path, text)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    assert str(path) in str(info.value)
    return info.value


def test_malformed_yaml_names_file_and_line_and_loads_nothing(tmp_path: Path) -> None:
    broken = GOOD.replace("channels: [slack, email]", "channels: [slack, email")
    err = error_of(tmp_path, broken)
    assert err.line is not None and 14 <= err.line <= 16
    assert "invalid YAML" in err.message


def test_condition_syntax_error_points_into_the_file(tmp_path: Path) -> None:
    text = GOOD.replace("expr: p95(botmon.trade.duration[5m]) > 2s",
                        "expr: p95(botmon.trade.duratoin[5m]) > 2s")
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (6, 19)  # the column of the misspelt name
    assert err.field == "groups[0].rules[0].expr"
    assert "unknown metric" in err.message and "^" in err.message


def test_quoted_condition_error_column_accounts_for_the_quote(tmp_path: Path) -> None:
    text = GOOD.replace("condition: win_rate < 50", 'condition: "win_rate < "')
    err = error_of(tmp_path, text)
    assert (err.line, err.column) == (20, 32)  # the closing quote: end of condition


def test_block_condition_error_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, GOOD.replace("cpu > 90\n", "cpu >> 90\n"))
    assert err.line == 27


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment"),
    [
        ("severity: warning", "severity: loud", "groups[0].rules[0].severity", "unknown value"),
        ("type: trading", "type: weather", "groups[0].rules[0].type", "unknown value"),
        ("channels: [slack, email]", "channels: [slack, pigeon]",
         "groups[0].rules[0].channels[1]", "unknown value"),
        ("for: 1m", "for: soon", "groups[0].rules[0].for", "duration"),
        ("for: 1m", "for: -5", "groups[0].rules[0].for", ">= 0"),
        ("cooldown: 10m", "coldown: 10m", "groups[0].rules[0].coldown", "unknown field"),
        ("recovery_threshold: 1.5", "recovery_threshold: high",
         "groups[0].rules[0].recovery_threshold", "expected a number"),
        ("condition: win_rate < 50", "condition: win_rate",
         "groups[0].rules[1].recovery_threshold", None),
        ("  - name: system", "  - name: trading", "groups[1].name", "duplicate group"),
        ("labels: {team: quant, tier: 1}", "labels: {team: [a]}",
         "groups[0].rules[0].labels.team", "expected a single value"),
        ("enabled: false", "enabled: maybe", "groups[1].rules[0].enabled", "true or false"),
        ("interval: 10s", "interval: 0s", "groups[0].interval", "> 0"),
        ("        cooldown_minutes: 30\n", "        cooldown_minutes: 30\n"
         "        cooldown_minutes: 40\n", "groups[0].rules[1].cooldown_minutes", "duplicate key"),
    ],
)
def test_invalid_fields_are_named(tmp_path: Path, old: str, new: str, field: str,
                                  fragment: str | None) -> None:
    if field.endswith("recovery_threshold") and fragment is None:
        # recovery threshold on a rule whose condition has no ordering comparison
        text = GOOD.replace(old, new).replace(
            "escalation_minutes: 60", "escalation_minutes: 60\n        recovery_threshold: 40")
        fragment = "needs a condition"
    else:
        text = GOOD.replace(old, new, 1)
    assert text != GOOD
    err = error_of(tmp_path, text)
    assert err.field == field
    assert fragment in err.message
    assert err.line is not None


@pytest.mark.parametrize(
    "text",
    ["", "groups: 3\n", "rules: []\n", "groups:\n  - rules: []\n",
     "groups:\n  - name: a\n    rules:\n      - alert: x\n",
     "groups:\n  - name: a\n    rules:\n      - expr: cpu > 1\n",
     "groups:\n  - name: a\n    rules:\n      - alert: x\n        expr: cpu > 1\n"
     "        condition: cpu > 2\n",
     "a: 1\n---\nb: 2\n", "groups:\n  - name: a\n    rules:\n      - [1, 2]\n",
     "groups: [{name: a, rules: [{alert: x, expr: [5]}]}]\n"],
)
def test_structural_errors(tmp_path: Path, text: str) -> None:
    error_of(tmp_path, text)


def test_a_number_is_an_expression_as_in_prometheus() -> None:
    [group] = parse_rules("groups: [{name: a, rules: [{alert: x, expr: 1}]}]\n")
    assert group.rules[0].condition == "1"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rule_file(tmp_path / "missing.yml")
    path = tmp_path / "binary.yml"
    path.write_bytes(b"\xff\xfe\x00groups")
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rule_file(path)


_RULE_KEYS = ("alert", "annotations", "channels", "condition", "cooldown", "cooldown_minutes",
              "description", "enabled", "escalation", "escalation_channels",
              "escalation_minutes", "expr", "for", "keep_firing_for", "labels", "name",
              "recovery_threshold", "severity", "type")


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from([k for k in _RULE_KEYS if len(k) >= 5]), data=st.data())
def test_a_misspelt_field_gets_a_suggestion(key: str, data: st.DataObject) -> None:
    # one letter left out: the error names the field meant, not only the known list
    at = data.draw(st.integers(0, len(key) - 1))
    typo = key[:at] + key[at + 1:]
    assume(typo not in _RULE_KEYS)
    text = f"groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: cpu > 1\n" \
           f"        {typo}: x\n"
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, "bot.yml")
    assert (caught.value.line, caught.value.field) == (6, f"groups[0].rules[0].{typo}")
    assert f"did you mean {key!r}?" in caught.value.message


@pytest.mark.parametrize(("field", "typo", "meant"), [
    ("severity", "warnin", "warning"), ("severity", "Critcal", "critical"),
    ("type", "tradng", "trading"), ("channels", "[slak]", "slack"),
])
def test_a_misspelt_value_gets_a_suggestion(field: str, typo: str, meant: str) -> None:
    text = f"groups:\n  - name: g\n    rules:\n      - alert: a\n        expr: cpu > 1\n" \
           f"        {field}: {typo}\n"
    with pytest.raises(RuleFileError, match=f"did you mean {meant!r}"):
        parse_rules(text, "bot.yml")


def test_a_misspelt_top_level_key_gets_a_suggestion() -> None:
    with pytest.raises(RuleFileError, match="did you mean 'groups'"):
        parse_rules("grups: []\n", "bot.yml")


def test_rules_sharing_an_alert_name_load_under_distinct_names(tmp_path: Path) -> None:
    # as in Prometheus (a warning and a critical rule of one measure): botmon names the
    # second "SlowTrades #2", its alerts keep alertname="SlowTrades"
    path = tmp_path / "rules.yml"
    path.write_text(GOOD.replace("- name: LowWinRate", "- name: SlowTrades", 1))
    rules = load_rule_file(path)
    names = [rule.name for rule in rules]
    assert names.count("SlowTrades") == 1 and "SlowTrades #2" in names
    second = next(rule for rule in rules if rule.name == "SlowTrades #2")
    assert second.labels["alertname"] == "SlowTrades"
    assert len(set(names)) == len(names)


def test_a_rule_label_does_not_rename_a_file_rules_alerts(tmp_path: Path) -> None:
    # Prometheus sets alertname from `alert:` after the rule's labels
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 1\n"
                    "    labels: {alertname: B, team: q}\n  - alert: 'A #2'\n    expr: x > 2\n"
                    "  - alert: A\n    expr: x > 3\n")
    rules = load_rule_file(path)
    assert [(r.name, r.labels.get("alertname")) for r in rules] == [
        ("A", "A"), ("A #2", None), ("A #3", "A")]
