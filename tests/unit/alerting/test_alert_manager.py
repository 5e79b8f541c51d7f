"""AlertManager over the real SDK pipeline: reader -> history -> rules -> alerts -> telemetry."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from otel_botmon import conventions as conv
from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import (
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertType,
    NotificationChannel,
)
from otel_botmon.query import MetricKind, RuleSyntaxError

from .conftest import Clock, Recorder


def close_positions(wins: int, losses: int, symbol: str = "BTCUSDT") -> None:
    counter = botmon_telemetry.instrument(conv.POSITIONS_CLOSED)
    for result, n in (("win", wins), ("loss", losses)):
        for _ in range(n):
            counter.add(1, {conv.TRADING_SYMBOL: symbol, conv.TRADING_RESULT: result})


def guide_rule() -> AlertRule:
    # the seed guide's custom rule, verbatim
    return AlertRule(
        name="custom_trading_rule",
        condition="win_rate < 50",
        severity=AlertSeverity.WARNING,
        alert_type=AlertType.TRADING,
        description="Trading win rate is below 50%",
        cooldown_minutes=30,
        escalation_minutes=60,
        channels=[NotificationChannel.EMAIL, NotificationChannel.SLACK],
    )


def test_guide_win_rate_rule_fires_and_resolves(telemetry: Any, clock: Clock) -> None:
    manager = AlertManager(reader=telemetry.metric_reader, clock=clock)
    manager.register_rule(guide_rule())
    sent = Recorder()
    manager.add_listener(sent)
    close_positions(wins=3, losses=1)
    assert manager.evaluate_once() == []
    close_positions(wins=0, losses=4)  # 3 of 8: 37.5 %
    clock.advance(10)
    (fired,) = manager.evaluate_once()
    alert = manager.get_alert(fired.alert_id)
    assert alert is not None and alert.value == pytest.approx(37.5)
    assert alert.title == "Trading win rate is below 50%"
    assert alert.channels == [NotificationChannel.EMAIL, NotificationChannel.SLACK]
    close_positions(wins=5, losses=0)  # 8 of 13
    clock.advance(10)
    (resolved,) = manager.evaluate_once()
    assert resolved.kind.value == "resolved"
    assert sent.kinds() == ["fired", "resolved"]


def test_alerts_are_telemetry_too(telemetry: Any, clock: Clock) -> None:
    gc.collect()  # evaluators of earlier tests would still count until collected
    manager = AlertManager(reader=telemetry.metric_reader, clock=clock)
    manager.register_rule(guide_rule())
    close_positions(wins=1, losses=3)
    manager.evaluate_once()
    assert telemetry.metric_point(conv.ALERTS_ACTIVE.name, alert_severity="warning").value == 1
    assert telemetry.metric_point(conv.ALERTS_ACTIVE.name, alert_severity="critical").value == 0
    (span,) = [s for s in telemetry.spans() if s.name == "botmon.alerts"]
    (event,) = span.events
    assert event.name == "alert.fired"
    assert event.attributes["alert.name"] == "custom_trading_rule"
    assert event.attributes[conv.ALERT_SEVERITY] == "warning"
    assert event.attributes["alert.value"] == 25.0
    manager.close()
    assert telemetry.metric_point(conv.ALERTS_ACTIVE.name, alert_severity="warning").value == 0


def test_a_metric_that_vanishes_or_changes_type_never_crashes(clock: Clock) -> None:
    manager = AlertManager(clock=clock)
    manager.register_rule(AlertRule("lag", "botmon.runtime.event_loop.lag > 0.5"))
    history = manager.history
    history.add_point("botmon.runtime.event_loop.lag", {}, 2.0, clock.now, kind=MetricKind.GAUGE)
    assert [e.kind.value for e in manager.evaluate_once()] == ["fired"]
    clock.advance(10)
    history.add_histogram_point(
        "botmon.runtime.event_loop.lag", {}, (0.1, 1.0), (1, 2, 3), 5.0, 6, clock.now,
    )
    events = manager.evaluate_once()  # changed type: no value, so the alert resolves
    assert [e.kind.value for e in events] == ["resolved"]
    clock.advance(10)
    history.mark_stale("botmon.runtime.event_loop.lag", {}, clock.now)
    assert manager.evaluate_once() == []


def test_register_rule_reports_errors_at_load(clock: Clock) -> None:
    manager = AlertManager(clock=clock)
    with pytest.raises(RuleSyntaxError) as info:
        manager.register_rule(AlertRule("bad", "win_rate < < 50"))
    assert info.value.position is not None
    manager.register_rule(guide_rule())
    with pytest.raises(ValueError, match="already registered"):
        manager.register_rule(guide_rule())
    assert manager.unregister_rule("custom_trading_rule")
    assert not manager.unregister_rule("custom_trading_rule")
    assert manager.rules == []


async def test_seed_custom_alert_example(clock: Clock) -> None:
    manager = AlertManager(clock=clock)
    alert_id = await manager.create_custom_alert(
        title="Custom Trading Alert",
        message="Something important happened in your trading strategy",
        severity=AlertSeverity.WARNING,
        alert_type=AlertType.TRADING,
    )
    assert [a.id for a in manager.get_active_alerts()] == [alert_id]
    assert await manager.acknowledge_alert(alert_id, "trader_john")
    assert await manager.resolve_alert(alert_id)
    alert = manager.get_alert(alert_id)
    assert alert is not None and alert.state is AlertState.RESOLVED
    assert alert.acknowledged_by == "trader_john"
    assert [e.kind.value for e in alert.events] == ["fired", "acknowledged", "resolved"]
    assert not await manager.resolve_alert("unknown")
    assert not await manager.acknowledge_alert("unknown", "me")
    assert [a.id for a in manager.get_alert_history()] == [alert_id]


async def test_restart_with_rules_registered_after_construction(
    telemetry: Any, clock: Clock, tmp_path: Path,
) -> None:
    db = tmp_path / "alerts.db"
    manager = AlertManager(reader=telemetry.metric_reader, store=db, clock=clock)
    manager.register_rule(guide_rule())
    close_positions(wins=1, losses=3)
    manager.evaluate_once()
    custom = await manager.create_custom_alert("Heartbeat", "stale", AlertSeverity.CRITICAL)
    manager.close()

    clock.advance(60)
    again = AlertManager(reader=telemetry.metric_reader, store=db, clock=clock)
    sent = Recorder()
    again.add_listener(sent, notifiable_only=False)
    again.register_rule(guide_rule())
    assert again.evaluate_once() == []
    assert {a.rule_name for a in again.get_firing_alerts()} == {"custom_trading_rule", "custom"}
    assert await again.acknowledge_alert(custom, "me")
    again.close()


async def test_silence_from_the_manager(clock: Clock) -> None:
    manager = AlertManager(clock=clock)
    sent = Recorder()
    manager.add_listener(sent)
    start = datetime.fromtimestamp(clock.now, tz=UTC)
    sid = await manager.add_silence({"alertname": "Noisy"}, start, duration_s=600,
                                    created_by="ops", comment="maintenance")
    await manager.create_custom_alert("Noisy", "x")
    assert sent.calls == []
    assert await manager.remove_silence(sid) and not await manager.remove_silence(sid)
    clock.advance(10)
    manager.evaluate_once()
    assert sent.kinds() == ["fired"]  # deferred until the silence went away
    with pytest.raises(ValueError, match="ends_at or duration_s"):
        await manager.add_silence('severity="warning"')


async def test_evaluation_loop_runs_off_the_event_loop(telemetry: Any) -> None:
    manager = AlertManager(reader=telemetry.metric_reader)
    manager.register_rule(guide_rule())
    seen = asyncio.Event()
    threads: list[bool] = []
    loop = asyncio.get_running_loop()

    def listener(alert: Any, event: Any) -> None:
        threads.append(asyncio.get_running_loop() is loop)
        seen.set()

    manager.add_listener(listener)
    close_positions(wins=0, losses=2)
    await manager.start(interval_s=0.02)
    assert manager.running
    await asyncio.wait_for(seen.wait(), timeout=10)
    await manager.stop()
    assert not manager.running
    assert threads == [True]  # listeners are called on the event loop's thread
    with pytest.raises(ValueError, match="interval"):
        await manager.start(interval_s=0)


def test_collect_failure_is_reported_not_raised(clock: Clock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    class BrokenReader:
        def get_metrics_data(self) -> Any:
            raise RuntimeError("reader is shut down")

    manager = AlertManager(reader=BrokenReader(), clock=clock)
    assert manager.evaluate_once() == []
    assert "alerting.collect" in caplog.text


async def test_notification_attempts_join_the_alert_history(clock: Clock, tmp_path: Path) -> None:
    manager = AlertManager(clock=clock, store=tmp_path / "a.db")
    alert_id = await manager.create_custom_alert("Disk full", "95 %")
    clock.advance(1)
    assert manager.record_notification(alert_id, "slack", ok=False, detail={"error": "HTTP 429"})
    assert manager.record_notification(alert_id, "slack", ok=True)
    assert not manager.record_notification("unknown", "slack", ok=True)
    kinds = [(e.kind.value, e.detail.get("ok")) for e in manager.get_alert(alert_id).events]
    assert kinds == [("fired", None), ("notified", False), ("notified", True)]
    stored = manager.store.get_alert(alert_id)
    assert [e.detail.get("error") for e in stored.events] == [None, "HTTP 429", None]
    manager.close()


def test_referenced_metrics_are_the_union_of_the_enabled_rules(clock: Clock) -> None:
    manager = AlertManager(clock=clock)
    manager.register_rule(guide_rule())
    manager.register_rule(AlertRule("lag", "botmon.runtime.event_loop.lag > 1"))
    manager.register_rule(AlertRule("off", "botmon.trades > 1", enabled=False))
    assert manager.evaluator.referenced_metrics() == {
        conv.POSITIONS_CLOSED.name, conv.EVENT_LOOP_LAG.name,
    }


async def test_a_dropped_manager_stops_counting_at_once(telemetry: Any, clock: Clock) -> None:
    gc.collect()
    keep = AlertManager(clock=clock)
    await keep.create_custom_alert("kept", "x", AlertSeverity.CRITICAL)
    dropped = AlertManager(clock=clock)
    await dropped.create_custom_alert("dropped", "x", AlertSeverity.CRITICAL)
    assert telemetry.metric_point(conv.ALERTS_ACTIVE.name, alert_severity="critical").value == 2
    gc.disable()  # no reference cycle may keep an evaluator alive
    try:
        del dropped
        assert telemetry.metric_point(conv.ALERTS_ACTIVE.name, alert_severity="critical").value == 1
    finally:
        gc.enable()


async def test_a_secret_in_who_acted_or_a_silence_never_reaches_a_view(clock: Clock) -> None:
    """The names an action is recorded under come from the caller (a bot's code, a CLI);
    a secret typed there is scrubbed before it is stored, notified or shown."""
    from otel_botmon import redaction
    from otel_botmon.monitor_views import silence_dict

    secret = "hunter2-sEcReT-77"
    redaction.register_secret(secret)
    try:
        manager = AlertManager(clock=clock)
        sent = Recorder()
        manager.add_listener(sent, notifiable_only=False)
        alert_id = await manager.create_custom_alert("Heartbeat", "stale")
        assert await manager.acknowledge_alert(alert_id, f"ops {secret}")
        assert await manager.resolve_alert(alert_id, user=secret)
        sid = await manager.add_silence(
            {"alertname": "Noisy", "api_key": "k-123456789", "note": f"x{secret}"},
            duration_s=60, created_by=secret)
        alert = manager.get_alert(alert_id)
        assert alert is not None and alert.acknowledged_by is not None
        assert alert.acknowledged_by.startswith("ops ")
        [silence] = [s for s in manager.get_silences() if s.id == sid]
        shown = silence_dict(silence, clock.now)
        text = repr((alert.to_dict(), [e.to_dict() for e in alert.events], sent.calls, shown))
        assert secret not in text and "k-123456789" not in text
        assert 'alertname="Noisy"' in shown["matchers_text"]
    finally:
        redaction.forget_secrets()


def test_the_collect_is_freed_before_the_rules_are_evaluated(
    telemetry: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader's data (a few objects per series) is not held through the evaluation,
    where a full garbage collection set off by the evaluation would traverse all of it."""
    import weakref

    manager = AlertManager(reader=telemetry.metric_reader, clock=clock)
    manager.register_rule(guide_rule())
    close_positions(wins=1, losses=3)
    collected: list[weakref.ref[Any]] = []
    real_collect = telemetry.metric_reader.get_metrics_data

    def collect() -> Any:
        data = real_collect()
        collected.append(weakref.ref(data))
        return data

    alive_at_evaluation: list[bool] = []
    real_evaluate = manager.evaluator.evaluate

    def evaluate(now: float, **kwargs: Any) -> Any:
        alive_at_evaluation.append(any(ref() is not None for ref in collected))
        return real_evaluate(now, **kwargs)

    monkeypatch.setattr(telemetry.metric_reader, "get_metrics_data", collect)
    monkeypatch.setattr(manager.evaluator, "evaluate", evaluate)
    (fired,) = manager.evaluate_once()  # the data was ingested: the rule saw it
    assert fired.kind.value == "fired"
    assert collected and alive_at_evaluation == [False]
    manager.close()
