"""`botmon rules check|test|export`: output and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from otel_botmon.alerting.rules_cli import add_rules_commands, main

RULES = """\
groups:
  - name: g
    rules:
      - alert: HighCpu
        expr: cpu > 90
        severity: critical
      - alert: Disabled
        expr: 'botmon.trades{trading.symbol=~"BTC.*"} > 1'
        enabled: false
"""
LOOKAHEAD = """\
groups:
  - name: g
    rules:
      - alert: Lookahead
        expr: 'botmon.trades{trading.symbol=~"(?!BTC).*"} > 1'
"""
TEST = """\
rule_files: [rules.yml]
tests:
  - input_series:
      - series: system_cpu_utilization
        values: '0.5 0.95 0.95'
    alert_rule_test:
      - eval_time: 1m
        alertname: HighCpu
        exp_alerts: [{exp_labels: {severity: critical}}]
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "rules.test.yml").write_text(TEST)
    (tmp_path / "broken.yml").write_text(RULES.replace("cpu > 90", "cpu >> 90"))
    (tmp_path / "lookahead.yml").write_text(LOOKAHEAD)
    return tmp_path


def test_registers_on_a_parent_parser() -> None:
    parser = argparse.ArgumentParser(prog="botmon")
    add_rules_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["rules", "export", "--format", "prometheus", "a.yml"])
    assert args.files == ["a.yml"] and callable(args.func)


def test_check_ok_and_failure(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(files / "rules.yml")]) == 0
    assert "OK, 2 rules in 1 group" in capsys.readouterr().out
    assert main(["rules", "check", str(files / "rules.yml"), str(files / "broken.yml")]) == 1
    err = capsys.readouterr().err
    assert f"{files / 'broken.yml'}:5:" in err and "^" in err
    # Prometheus (RE2) has no look-ahead: refused where the regex starts, as promtool does
    assert main(["rules", "check", str(files / "lookahead.yml")]) == 1
    err = capsys.readouterr().err
    assert f"{files / 'lookahead.yml'}:5:46:" in err and "RE2" in err


def test_test_command(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(files / "rules.test.yml")]) == 0
    assert "SUCCESS" in capsys.readouterr().out
    (files / "wrong.test.yml").write_text(TEST.replace("eval_time: 1m", "eval_time: 0m"))
    assert main(["rules", "test", str(files / "wrong.test.yml")]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "alertname: HighCpu" in out
    # a series of another name is a metric of its own: the CPU alert then never fires
    (files / "other.test.yml").write_text(TEST.replace("system_cpu_utilization", "nope"))
    assert main(["rules", "test", str(files / "other.test.yml")]) == 1
    assert "alertname: HighCpu" in capsys.readouterr().out
    (files / "bad.test.yml").write_text(TEST.replace("eval_time: 1m", "eval_time: 1"))
    assert main(["rules", "test", str(files / "bad.test.yml")]) == 1
    assert "bad.test.yml:7:" in capsys.readouterr().err


def test_export_writes_translatable_rules_and_says_which_not(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = files / "prom.yml"
    assert main(["rules", "export", "--format", "prometheus", "-o", str(out),
                 str(files / "rules.yml")]) == 0
    doc = yaml.safe_load(out.read_text())
    assert [r["alert"] for r in doc["groups"][0]["rules"]] == ["HighCpu"]
    err = capsys.readouterr().err
    assert "not exported: Disabled" in err
    assert main(["rules", "export", str(files / "broken.yml")]) == 2


def test_export_defaults_to_the_default_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "export"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    names = {r["alert"] for g in doc["groups"] for r in g["rules"]}
    assert {"high_cpu_usage", "api_connection_failed", "high_api_error_rate"} <= names


FLEET = """\
groups:
  - name: g
    rules:
      - record: job:req:rate5m
        expr: sum by (job) (rate(req_total[5m]))
"""


@pytest.mark.parametrize(("flag", "expr"), [
    ([], "sum by (job, instance, bot_name) (rate(req_total[5m]))"),
    (["--per-bot", ""], "sum by (job) (rate(req_total[5m]))"),
    (["--per-bot", "job, instance"], "sum by (job, instance) (rate(req_total[5m]))"),
])
def test_export_per_bot_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               flag: list[str], expr: str) -> None:
    (tmp_path / "fleet.yml").write_text(FLEET)
    assert main(["rules", "export", *flag, str(tmp_path / "fleet.yml")]) == 0
    [rule] = yaml.safe_load(capsys.readouterr().out)["groups"][0]["rules"]
    assert rule["expr"] == expr


@pytest.mark.parametrize("command", ["check", "test"])
@pytest.mark.parametrize("unusable", ["missing.yml", "a-directory", "binary.yml", "loop.yml"])
def test_a_file_that_cannot_be_read_exits_2(
    files: Path, capsys: pytest.CaptureFixture[str], command: str, unusable: str,
) -> None:
    # 2 is "unusable input (unreadable file, bad arguments)", as `rules export` already
    # answered; 1 stays "a rule or a test failed"
    (files / "a-directory").mkdir()
    (files / "binary.yml").write_bytes(bytes(range(256)) * 4)
    (files / "loop.yml").symlink_to(files / "loop.yml")
    good = str(files / ("rules.yml" if command == "check" else "rules.test.yml"))
    assert main(["rules", command, good, str(files / unusable)]) == 2
    err = capsys.readouterr().err
    assert unusable in err and "cannot read" in err and "Traceback" not in err
    if command == "check":  # a content error alone is still 1
        assert main(["rules", "check", good, str(files / "broken.yml")]) == 1


def test_a_reader_that_goes_away_gets_no_traceback(files: Path) -> None:
    # `botmon rules check *.yml | head -1`: more output than a pipe holds, and the reader
    # closes after one line; this was a BrokenPipeError traceback on stderr
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_botmon.cli", "rules", "check",
         *[str(files / "rules.yml")] * 4000],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().endswith(b"OK, 2 rules in 1 group\n")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err  # 128 + SIGPIPE, as a shell reports it
    assert err == ""
