"""Every bench script on the harness takes the harness's command line (run_all.py passes
``--json``, ``--repeat`` and ``--quick`` to each, and counts a script that rejects them as
failed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_takes_the_harness_options(script: Path) -> None:
    if "_harness" not in script.read_text(encoding="utf-8"):
        pytest.skip(f"{script.name} is not on the harness yet")
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=120, check=False, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr
    for option in ("--repeat", "--rounds", "--quick", "--only", "--json", "--clock"):
        assert option in done.stdout, (option, done.stdout)


def test_the_peers_rule_suite_passes_and_checks_what_it_says(tmp_path: Path) -> None:
    """bench_peers times `botmon rules test` on its generated suite: the suite passes,
    and a wrong expectation in it fails (so the timed run really checks something)."""
    from bench.bench_peers import rule_suite
    from otel_botmon.alerting.ruletest import run_rule_tests

    test = rule_suite(tmp_path)
    report = run_rule_tests(test)
    assert report.ok and report.checks == 9, report.render()
    test.write_text(test.read_text().replace("instance: 'n1:9100'", "instance: 'n2:9100'"))
    assert not run_rule_tests(test).ok
