"""`botmon status` and `botmon alerts list|ack|resolve` against a running dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from otel_botmon import cli
from otel_botmon.alerting.model import AlertSeverity, AlertType
from otel_botmon.monitor import MonitoringConfig

from .live_server import LiveDashboard

TOKEN = "cli-token-123456"


def _config() -> MonitoringConfig:
    return MonitoringConfig(health_check_interval=5.0, default_alert_rules=False)


@pytest.fixture
def live() -> Iterator[LiveDashboard]:
    with LiveDashboard(_config()) as server:
        yield server


@pytest.fixture
def live_token() -> Iterator[LiveDashboard]:
    with LiveDashboard(_config(), access_token=TOKEN) as server:
        yield server


def _alert(live: LiveDashboard, title: str = "Custom Trading Alert") -> str:
    return live.call(live.monitor.create_custom_alert(
        title, "Something happened", AlertSeverity.WARNING, AlertType.TRADING,
    ))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_shows_health_uptime_and_components(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    _alert(live)
    code, out, _ = run(capsys, "status", "--url", live.url)
    assert code == 0
    # a warning alert makes the bot at least degraded (a busy host can make it critical)
    assert "overall health: degraded" in out or "overall health: critical" in out
    assert "active alerts:  1 (info 0, warning 1, critical 0, emergency 0)" in out
    assert re.search(r"^uptime: +\d+m \d\ds$", out, re.MULTILINE), out
    assert "system_resources" in out


def test_alerts_list_ack_and_resolve(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    alert_id = _alert(live, "Low Win Rate Alert \x1b[31m")
    code, out, _ = run(capsys, "alerts", "list", "--url", live.url)
    assert code == 0 and alert_id in out and "Low Win Rate Alert" in out
    assert "\x1b" not in out  # no terminal escapes from alert text
    code, out, _ = run(
        capsys, "alerts", "ack", alert_id, "--user", "trader_john", "--url", live.url)
    assert code == 0 and "acknowledged" in out
    assert live.monitor.get_alert(alert_id)["acknowledged_by"] == "trader_john"
    code, out, _ = run(capsys, "alerts", "resolve", alert_id, "--url", live.url)
    assert code == 0
    assert live.monitor.get_alert(alert_id)["state"] == "resolved"
    code, out, _ = run(capsys, "alerts", "list", "--url", live.url)
    assert out.strip() == "no alerts"
    code, out, _ = run(capsys, "alerts", "list", "--all", "--url", live.url)
    assert alert_id in out and "resolved" in out


def test_unknown_alert_fails_with_a_clear_message(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "alerts", "ack", "nope", "--user", "u", "--url", live.url)
    assert code == 1
    assert "HTTP 404" in err and "no alert with id 'nope'" in err


def test_token_is_required_and_sent(
    live_token: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    alert_id = _alert(live_token)
    code, _, err = run(capsys, "alerts", "ack", alert_id, "--user", "u", "--url", live_token.url)
    assert code == 2 and "--token" in err
    code, _, _ = run(capsys, "alerts", "ack", alert_id, "--user", "u", "--url", live_token.url,
                     "--token", TOKEN)
    assert code == 0


def test_unreachable_dashboard_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.services import free_port

    code, _, err = run(capsys, "status", "--url", f"http://127.0.0.1:{free_port()}",
                       "--timeout", "2")
    assert code == 2 and "cannot reach the dashboard" in err


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["demo", "--duration", "-1"], ["demo", "--port", "70000"], ["alerts", "ack", "x"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    assert "usage: botmon" in capsys.readouterr().err


def test_rules_commands_are_part_of_botmon(tmp_path: object) -> None:
    import pathlib

    out = pathlib.Path(str(tmp_path)) / "rules.yml"
    assert cli.main(["rules", "export", "--format", "prometheus", "--output", str(out)]) == 0
    assert "high_cpu_usage" in out.read_text()
