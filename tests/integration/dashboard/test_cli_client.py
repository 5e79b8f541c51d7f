"""`botmon status` and `botmon alerts list|ack|resolve` against a running dashboard."""

from __future__ import annotations

import json
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
    # a warning alert makes the bot at least degraded (a busy host can make it critical)
    assert ("overall health: degraded" in out and code == 1) or (
        "overall health: critical" in out and code == 2)
    assert "firing alerts:  1 (info 0, warning 1, critical 0, emergency 0); pending 0" in out
    assert re.search(r"^uptime: +\d+m \d\ds$", out, re.MULTILINE), out
    assert "system_resources" in out
    assert re.search(r"^  WARNING +for \d+s +[0-9a-f]{8}  Custom Trading Alert$", out,
                     re.MULTILINE), out
    # the KPIs by the alert rules' names, each with its unit and window
    assert "kpis (the alert rules' definitions):" in out
    assert re.search(r"^  api_error_rate +(-|\S+ errors/min) +1m$", out, re.MULTILINE), out
    assert re.search(r"^  trade_latency_p95 +(-|\S+ s) +5m$", out, re.MULTILINE), out


def test_status_exits_2_while_an_alert_is_critical_and_names_it(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    _alert(live, "Harmless warning")
    live.call(live.monitor.create_custom_alert(
        "Trading engine stalled", "no heartbeat", AlertSeverity.CRITICAL))
    code, out, _ = run(capsys, "status", "--url", live.url.removeprefix("http://"))
    assert code == 2
    assert out.splitlines()[0] == "CRITICAL · Trading engine stalled (+1)"
    assert "\x1b" not in out  # not a terminal: no colours
    code, out, _ = run(capsys, "status", "--json", "--url", live.url)
    assert code == 2
    assert [a["title"] for a in json.loads(out)["firing"]] == [
        "Trading engine stalled", "Harmless warning"]


def test_status_exits_0_when_healthy_and_3_when_unreachable(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    live.call(live.monitor.force_health_check())
    code, _out, _ = run(capsys, "status", "--url", live.url)
    status = live.monitor.get_system_status().overall_health.value
    assert code == {"healthy": 0, "degraded": 1, "critical": 2}[status]
    from tests.services import free_port

    code, _, err = run(capsys, "status", "--url", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 3 and "cannot reach the dashboard" in err


def test_ack_by_unique_prefix_defaults_to_user_and_takes_a_note(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "night_shift")
    alert_id = _alert(live)
    code, out, err = run(capsys, "alerts", "ack", alert_id[:6], "--note", "on it",
                         "--url", live.url)
    assert code == 0, err
    assert f"acknowledged {alert_id[:8]}" in out and "as night_shift" in out
    events = live.monitor.get_alert(alert_id, with_events=True)["events"]
    assert {"by": "night_shift", "note": "on it"} in [e["detail"] for e in events]


def test_ambiguous_prefix_is_refused(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    ids = [_alert(live, f"Alert {n}") for n in range(40)]
    # 40 random ids, 16 possible first characters: some first character is shared
    shared = next(c for c in "0123456789abcdef" if sum(i[0] == c for i in ids) > 1)
    code, _, err = run(capsys, "alerts", "resolve", shared, "--url", live.url)
    assert code == 1 and "ambiguous" in err
    assert all(live.monitor.get_alert(i)["state"] == "firing" for i in ids)


def test_alerts_list_shows_age_and_pending_only_on_request(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    from otel_botmon.alerting.model import AlertRule
    from otel_botmon.query import MetricKind

    manager = live.monitor.alert_manager
    metric = "botmon.runtime.event_loop.lag"
    manager.register_rule(AlertRule("slow_loop", f"{metric} > 0.5", for_=3600))
    manager.history.add_point(metric, {}, 2.0, manager.clock(), kind=MetricKind.GAUGE)
    manager.evaluate_once()
    firing_id = _alert(live)
    _, out, _ = run(capsys, "alerts", "list", "--url", live.url)
    assert "AGE" in out.splitlines()[0]
    assert firing_id[:8] in out and "pending" not in out
    _code, out, _ = run(capsys, "alerts", "list", "--pending", "--url", live.url)
    assert "pending" in out and firing_id[:8] in out


def test_alerts_list_ack_and_resolve(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    alert_id = _alert(live, "Low Win Rate Alert \x1b[31m")
    code, out, _ = run(capsys, "alerts", "list", "--url", live.url)
    assert code == 0 and alert_id[:8] in out and "Low Win Rate Alert" in out
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
    code, out, _ = run(capsys, "alerts", "list", "--all", "--wide", "--url", live.url)
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
    code, _, err = run(capsys, "status", "--url", live_token.url)
    assert code == 3 and "--token" in err  # with a token, reads need it too
    code, _, err = run(capsys, "status", "--url", live_token.url, "--token", TOKEN)
    assert code in (0, 1, 2)
    code, _, _ = run(capsys, "alerts", "ack", alert_id, "--user", "u", "--url", live_token.url,
                     "--token", TOKEN)
    assert code == 0


def test_unreachable_dashboard_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.services import free_port

    code, _, err = run(capsys, "alerts", "list", "--url", f"http://127.0.0.1:{free_port()}",
                       "--timeout", "2")
    assert code == 2 and "cannot reach the dashboard" in err


@pytest.mark.parametrize("url", ["::::", "ftp://host", "", "http://[::1"])
@pytest.mark.parametrize(("argv", "code"), [
    (["status"], 3), (["alerts", "list"], 2), (["alerts", "ack", "1a2b"], 2),
    (["silence", "list"], 2),
])
def test_a_url_that_is_no_url_is_named_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str,
    argv: list[str], code: int,
) -> None:
    # `--url ::::` (or the same in $BOTMON_URL) was httpx's InvalidURL traceback
    monkeypatch.setenv("BOTMON_URL", url)
    got, out, err = run(capsys, *argv, "--timeout", "2")
    assert got == code and out == ""
    assert err.startswith("botmon: --url (or $BOTMON_URL)") and "is not a dashboard URL" in err


def test_silence_add_list_and_expire(
    live: LiveDashboard, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "silence", "add", "alertname=high_cpu_usage",
                         'severity=~"warning|info"', "--duration", "1h30m",
                         "--comment", "deploy", "--user", "ann", "--url", live.url)
    assert code == 0, err
    (silence,) = live.monitor.get_silences()
    assert silence["created_by"] == "ann" and silence["comment"] == "deploy"
    assert 5390 < silence["ends_at"] - silence["starts_at"] <= 5400
    code, out, _ = run(capsys, "silence", "list", "--url", live.url)
    assert silence["id"][:8] in out and 'alertname="high_cpu_usage"' in out
    assert "active" in out and "1h" in out
    code, out, _ = run(capsys, "silence", "expire", silence["id"][:5], "--url", live.url)
    assert code == 0 and live.monitor.get_silences() == []
    code, out, _ = run(capsys, "silence", "list", "--url", live.url)
    assert out.strip() == "no silences"
    code, _, err = run(capsys, "silence", "expire", "ffff", "--url", live.url)
    assert code == 1 and "HTTP 404" in err


def test_every_command_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["demo", "--help"], ["status", "--help"], ["alerts", "--help"],
                 ["alerts", "list", "--help"], ["alerts", "ack", "--help"],
                 ["alerts", "resolve", "--help"], ["silence", "--help"],
                 ["silence", "add", "--help"], ["silence", "list", "--help"],
                 ["silence", "expire", "--help"], ["rules", "--help"],
                 ["rules", "check", "--help"], ["rules", "test", "--help"],
                 ["rules", "export", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "examples:\n  botmon" in capsys.readouterr().out, argv


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["demo", "--duration", "-1"], ["demo", "--port", "70000"], ["alerts", "ack"],
                 ["silence", "add", "a=b", "--duration", "soon"],
                 ["alerts", "list", "--limit", "-5"], ["alerts", "list", "--limit", "0"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    assert "usage: botmon" in capsys.readouterr().err


def test_rules_commands_are_part_of_botmon(tmp_path: object) -> None:
    import pathlib

    out = pathlib.Path(str(tmp_path)) / "rules.yml"
    assert cli.main(["rules", "export", "--format", "prometheus", "--output", str(out)]) == 0
    assert "high_cpu_usage" in out.read_text()


def test_ctrl_c_while_the_parser_is_built_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # building the parser imports the alerting package: on a loaded machine seconds in
    # which a Ctrl-C was a KeyboardInterrupt traceback instead of exit 130
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        code = cli.main(["demo", "--duration", "1"])
    except KeyboardInterrupt:  # not raised on: that would end the test session
        pytest.fail("KeyboardInterrupt escaped botmon's main()")
    assert code == 130
    assert capsys.readouterr().err == ""
