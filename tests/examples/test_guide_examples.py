"""Every code example of the guide runs as written (with `src.monitoring` -> `otel_botmon`).

Each file in examples/ runs in this process through examples/run_example.py (top-level
``await`` allowed, as the guide writes it). The only change the test makes: sleeps of
30 s and more (the guide's "run for an hour") last 0.2 s.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if p.name != "run_example.py")


def _runner() -> Any:
    spec = importlib.util.spec_from_file_location("run_example", EXAMPLES_DIR / "run_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_example


@pytest.fixture
def short_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Shorten long asyncio sleeps; returns the delays that were shortened."""
    real_sleep = asyncio.sleep
    shortened: list[float] = []

    async def sleep(delay: float, result: Any = None) -> Any:
        if delay >= 30:
            shortened.append(delay)
            delay = 0.2
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return shortened


def test_every_guide_section_has_an_example() -> None:
    assert len(EXAMPLES) >= 17


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(
    path: Path, short_sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.chdir(tmp_path)  # examples may write files (alerts.log)
    _runner()(path)
    out = capsys.readouterr().out
    if path.stem == "quickstart_basic_usage":
        assert 3600 in short_sleeps
    if path.stem == "custom_alerts":
        assert out.strip() == "resolved"
    if path.stem == "custom_alert_conditions":
        assert "Win rate dropped to 35.0% over 24 trades" in out
    if path.stem == "custom_health_checks":
        assert out.startswith("healthy")
    if path.stem == "trading_integration":
        assert "FILLED" in out and "Trade Execution Failed" in out
    if path.stem == "check_system_status":
        assert "Overall health:" in out and "Active alerts: 0" in out
    if path.stem == "custom_metrics":
        assert "85.5" in out
    if path.stem == "custom_alert_rules":
        assert "custom_trading_rule" in out
    if path.stem == "config_notification_config":
        assert "your-app-password" not in out and "YOUR_BOT_TOKEN" not in out
    if path.stem == "monitoring_integration_example":
        assert "dashboard at http://localhost:8001" in out and "health:" in out
    # ran cleanly: an example that raised failed in run_example above, and an error the
    # SDK swallowed to keep the bot running (report_internal_error) is logged as ERROR
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_dashboard_example_exits_without_a_traceback(tmp_path: Path) -> None:
    # The guide's "With Dashboard": main() returns right after dashboard.start(), so
    # asyncio.run() cancels the running server. That printed uvicorn's "ERROR: Traceback
    # ... CancelledError" (Starlette reporting the lifespan as a failed shutdown) and
    # left the listening socket unclosed. A fresh interpreter, as a user runs it; port 0
    # so that parallel runs do not collide.
    import subprocess
    import sys

    source = (EXAMPLES_DIR / "quickstart_with_dashboard.py").read_text(encoding="utf-8")
    assert "port=8001" in source
    script = tmp_path / "with_dashboard.py"
    script.write_text(source.replace("port=8001", "port=0"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "default::ResourceWarning", str(script)], cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(EXAMPLES_DIR.parent)},
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_the_guides_install_command_has_its_requirements_file() -> None:
    # The guide's Installation: `pip install -r requirements.txt`, then "these additional
    # packages": fastapi, uvicorn[standard], websockets, psutil, email-validator. The
    # file installs this package with the extras that bring them.
    import re
    import tomllib

    root = EXAMPLES_DIR.parent
    lines = [line.strip() for line in (root / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines == ["-e .[all]"]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        found: set[str] = set()
        for req in requirements:
            name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower()
            if name == "otel-botmon":  # otel-botmon[dashboard,prometheus,email]
                for extra in re.search(r"\[(.*)\]", req).group(1).split(","):  # type: ignore[union-attr]
                    found |= names(extras[extra.strip()])
            else:
                found.add(name)
        return found

    installed = names(project["dependencies"]) | names(extras["all"])
    assert {"fastapi", "uvicorn", "websockets", "psutil", "email-validator"} <= installed
