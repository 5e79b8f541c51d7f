"""promtool suites in the shape of third-party ones (Prometheus' cmd/promtool/testdata,
the kubernetes and node mixins' tests): recording rules feeding alerts, ``rate``,
``sum by``/``without``, vector matching with ``on``/``ignoring``/``group_left``, ``bool``,
``and``/``unless`` and comparisons. The files under ``data/third_party_shape/`` are this
project's own; nothing is downloaded or copied.

- ``run/``: inside the supported language. ``botmon rules test`` passes them, so does
  ``promtool test rules`` on the same files and on ``botmon rules export --per-bot ''``
  of their rules, and a wrong expectation fails in both.
- ``refused/``: valid suites (promtool passes them) using what botmon does not support;
  botmon refuses each at the file:line:column of the construct and names it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_botmon.alerting.rules_cli import main as rules_main
from tests.services import require_binary

pytestmark = pytest.mark.integration

DATA = Path(__file__).with_name("data") / "third_party_shape"
RUN = sorted((DATA / "run").glob("*.test.yml"))

# suite -> (file, line, column, words of botmon's message naming the construct)
REFUSED: dict[str, tuple[str, int, int, str]] = {
    "absent": ("absent.rules.yml", 7, 15, "PromQL function 'absent' is not supported"),
    "at_modifier": ("at_modifier.rules.yml", 7, 30, "the @ modifier is not supported"),
    "chained_comparison": ("chained_comparison.rules.yml", 7, 53,
                           "comparisons cannot be chained"),
    "histogram_quantile": ("histogram_quantile.rules.yml", 7, 15,
                           "PromQL function 'histogram_quantile' is not supported"),
    "label_replace": ("label_replace.rules.yml", 7, 15,
                      "PromQL function 'label_replace' is not supported"),
    "offset": ("offset.test.yml", 11, 57, "'offset' is not supported"),
    "power": ("power.rules.yml", 7, 26, "the PromQL operator '^' (power) is not supported"),
    "predict_linear": ("predict_linear.rules.yml", 10, 11,
                       "PromQL function 'predict_linear' is not supported"),
    "subquery": ("subquery.rules.yml", 9, 41, "subqueries"),
    "template_if": ("template_if.rules.yml", 11, 25,
                    "template action {{ if gt $value 95.0 }} is not supported"),
    "time": ("time.rules.yml", 7, 15, "PromQL function 'time' is not supported"),
    "topk": ("topk.rules.yml", 7, 15, "PromQL function 'topk' is not supported"),
}


def _promtool(test_file: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "/usr/bin/promtool")
    return subprocess.run([binary, "test", "rules", test_file.name], cwd=test_file.parent,
                          capture_output=True, text=True, timeout=60, check=False)


def _botmon(test_file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = rules_main(["rules", "test", str(test_file)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _rule_files(test_file: Path) -> list[str]:
    files: list[str] = yaml.safe_load(test_file.read_text())["rule_files"]
    return files


def test_the_collection_has_both_kinds() -> None:
    assert len(RUN) >= 5
    refused = {p.name.removesuffix(".test.yml") for p in (DATA / "refused").glob("*.test.yml")}
    assert refused == set(REFUSED)


@pytest.mark.parametrize("suite", RUN, ids=lambda p: p.name)
def test_botmon_and_promtool_pass_the_suite(suite: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _botmon(suite, capsys)
    assert code == 0, output
    done = _promtool(suite)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("suite", RUN, ids=lambda p: p.name)
def test_promtool_passes_it_on_the_fleet_wide_export(suite: Path, tmp_path: Path) -> None:
    for name in _rule_files(suite):
        assert rules_main(["rules", "export", "--per-bot", "", "-o", str(tmp_path / name),
                           str(suite.parent / name)]) == 0
    shutil.copy(suite, tmp_path / suite.name)
    done = _promtool(tmp_path / suite.name)
    assert done.returncode == 0, done.stdout + done.stderr


def _break_one_expectation(doc: dict[str, Any]) -> None:
    """Change the first expected sample's value, or else add a label to the first
    expected alert."""
    for group in doc["tests"]:
        for check in group.get("promql_expr_test", []):
            if check.get("exp_samples"):
                check["exp_samples"][0]["value"] += 1
                return
    for group in doc["tests"]:
        for check in group.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                check["exp_alerts"][0].setdefault("exp_labels", {})["extra"] = "x"
                return
    raise AssertionError("the suite expects nothing")


@pytest.mark.parametrize("suite", RUN, ids=lambda p: p.name)
def test_a_wrong_expectation_fails_in_both(suite: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(suite.read_text())
    _break_one_expectation(doc)
    for name in _rule_files(suite):
        shutil.copy(suite.parent / name, tmp_path / name)
    broken = tmp_path / suite.name
    broken.write_text(yaml.safe_dump(doc))
    code, output = _botmon(broken, capsys)
    assert code == 1 and "FAILED" in output, output
    assert _promtool(broken).returncode != 0


@pytest.mark.parametrize("suite", sorted(REFUSED))
def test_botmon_refuses_at_the_construct(suite: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    file, line, column, construct = REFUSED[suite]
    code, output = _botmon(DATA / "refused" / f"{suite}.test.yml", capsys)
    assert code == 1
    assert f"{file}:{line}:{column}: " in output, output
    assert construct in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("suite", sorted(REFUSED))
def test_promtool_passes_the_refused_suites(suite: str) -> None:
    """Each refused file is a valid suite: the refusal is botmon's limit, not the file's."""
    done = _promtool(DATA / "refused" / f"{suite}.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_named_exception_the_default_export_is_per_bot(tmp_path: Path) -> None:
    """Deliberate difference: without ``--per-bot ''`` the export keeps each bot's labels
    in every aggregation (a bot's rule means "in this bot"), so a fleet-wide rule
    summing two instances gives one result per instance in Prometheus."""
    suite = DATA / "run" / "http_slo.test.yml"
    for name in _rule_files(suite):
        assert rules_main(["rules", "export", "-o", str(tmp_path / name),
                           str(suite.parent / name)]) == 0
        assert "sum by (job, instance, bot_name)" in (tmp_path / name).read_text()
    shutil.copy(suite, tmp_path / suite.name)
    done = _promtool(tmp_path / suite.name)
    assert done.returncode != 0 and 'instance="a:80"' in done.stdout + done.stderr


def test_an_export_of_files_sharing_group_names_passes_promtool_check(tmp_path: Path) -> None:
    # two files each with a group "filesystem": Prometheus refuses one file holding both
    # under one name, so the export names the second "filesystem #2"
    source = DATA / "run" / "duplicate_names.rules.yml"
    copy = tmp_path / "copy.rules.yml"
    shutil.copy(source, copy)
    out = tmp_path / "all.rules.yml"
    assert rules_main(["rules", "export", "--per-bot", "", "-o", str(out), str(source),
                       str(copy)]) == 0
    names = [group["name"] for group in yaml.safe_load(out.read_text())["groups"]]
    assert names == ["filesystem", "filesystem #2"]
    binary = require_binary("promtool", "/usr/bin/promtool")
    done = subprocess.run([binary, "check", "rules", str(out)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
