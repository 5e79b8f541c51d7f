"""Which alert events reach notification channels: cooldown, rate limits, escalation,
silences, inhibition, acknowledgement and manual resolve."""

from __future__ import annotations

import uuid

import pytest

from otel_botmon.alerting.model import (
    AlertRule,
    AlertSeverity,
    AlertState,
    LabelMatcher,
    NotificationChannel,
    Silence,
)

from .conftest import Clock, Conditions, Recorder


def silence(*matchers: str, start: float, end: float) -> Silence:
    return Silence(uuid.uuid4().hex, [LabelMatcher.parse(m) for m in matchers], start, end)


def test_cooldown_holds_back_a_refire_then_notifies_if_still_firing(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", cooldown_minutes=5))
    sent = Recorder()
    ev.add_listener(sent)
    cond.set(5)
    ev.evaluate()
    clock.advance(60)
    cond.set(0)
    ev.evaluate()  # resolved at T+60
    assert sent.kinds() == ["fired", "resolved"]
    clock.advance(120)
    cond.set(5)
    (refired,) = ev.evaluate()
    assert not refired.notify and refired.suppressed == "cooldown"
    assert ev.firing()[0].state is AlertState.FIRING  # state is tracked regardless
    clock.advance(179)  # 4 min 59 s after the resolve
    ev.evaluate()
    assert sent.kinds() == ["fired", "resolved"]
    clock.advance(1)  # exactly 5 min after the resolve
    (late,) = ev.evaluate()
    assert late.notify and late.detail["deferred"] and late.detail["was_suppressed"] == "cooldown"
    assert sent.kinds() == ["fired", "resolved", "fired"]


def test_an_alert_that_resolves_within_its_cooldown_is_never_notified(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", cooldown_minutes=5))
    sent = Recorder()
    ev.add_listener(sent)
    cond.set(5)
    ev.evaluate()
    cond.set(0)
    clock.advance(10)
    ev.evaluate()
    cond.set(5)
    clock.advance(10)
    ev.evaluate()
    cond.set(0)
    clock.advance(10)
    (resolved,) = ev.evaluate()
    assert resolved.suppressed == "not_notified"
    assert sent.kinds() == ["fired", "resolved"]


def test_rate_limit_holds_back_and_counts_then_sends_later(
    make_evaluator, conditions: Conditions, clock: Clock, caplog: pytest.LogCaptureFixture,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1"), max_notifications_per_rule_per_minute=2)
    sent = Recorder()
    ev.add_listener(sent)
    for i in range(5):
        cond.set(5, symbol=f"S{i}")
    events = ev.evaluate()
    assert [e.notify for e in events] == [True, True, False, False, False]
    assert {e.suppressed for e in events[2:]} == {"rate_limited"}
    assert ev.rate_limited_total == {"x": 3}
    assert "exceeded 2 notifications per minute" in caplog.text
    clock.advance(30)
    assert ev.evaluate() == []
    clock.advance(30)  # the first two leave the 60 s window
    late = ev.evaluate()
    assert [e.detail.get("deferred") for e in late] == [True, True]
    assert late[0].detail["rate_limited_before"] == 3
    assert len(sent.calls) == 4
    clock.advance(60)
    assert len(ev.evaluate()) == 1
    assert ev.rate_limited_total == {"x": 3}  # counted once per alert, not per cycle


def test_unacknowledged_alert_escalates_with_channels(make_evaluator, conditions: Conditions,
                                                      clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule(
        "x", "x > 1", severity=AlertSeverity.WARNING, escalation_minutes=10,
        channels=[NotificationChannel.SLACK],
        escalation_channels=[NotificationChannel.PAGERDUTY, NotificationChannel.SLACK],
    ))
    sent = Recorder()
    ev.add_listener(sent)
    cond.set(5)
    ev.evaluate()
    clock.advance(599)
    assert ev.evaluate() == []
    clock.advance(1)
    (escalated,) = ev.evaluate()
    assert escalated.kind.value == "escalated" and escalated.notify
    assert escalated.detail["from"] == "warning" and escalated.detail["to"] == "critical"
    assert escalated.detail["added_channels"] == ["pagerduty"]
    (alert,) = ev.firing()
    assert alert.severity is AlertSeverity.CRITICAL and alert.escalation_level == 1
    assert alert.channels == [NotificationChannel.SLACK, NotificationChannel.PAGERDUTY]
    assert alert.labels["severity"] == "warning"  # identity (fingerprint) does not change
    clock.advance(600)
    (again,) = ev.evaluate()
    assert again.detail["to"] == "emergency"
    clock.advance(6000)
    assert ev.evaluate() == []  # nothing above EMERGENCY
    assert sent.kinds() == ["fired", "escalated", "escalated"]


def test_acknowledged_alert_does_not_escalate(make_evaluator, conditions: Conditions,
                                              clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", escalation_minutes=1))
    cond.set(5)
    (fired,) = ev.evaluate()
    clock.advance(30)
    ok, (acked,) = ev.acknowledge(fired.alert_id, "trader_john")
    assert ok and acked.kind.value == "acknowledged" and acked.detail == {"by": "trader_john"}
    alert = ev.get(fired.alert_id)
    assert alert.acknowledged_by == "trader_john" and alert.acknowledged_at == clock.now
    clock.advance(3600)
    assert ev.evaluate() == []
    # a second acknowledgement keeps the first
    assert ev.acknowledge(fired.alert_id, "someone_else") == (True, [])
    assert ev.get(fired.alert_id).acknowledged_by == "trader_john"


def test_unknown_alert_ids_give_false(make_evaluator) -> None:
    ev = make_evaluator()
    assert ev.acknowledge("nope", "me") == (False, [])
    assert ev.resolve("nope", "me") == (False, [])
    assert ev.get("nope") is None


def test_manual_resolve_sticks_until_the_condition_clears(make_evaluator, conditions: Conditions,
                                                          clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", cooldown_minutes=0))
    cond.set(5)
    (fired,) = ev.evaluate()
    clock.advance(10)
    ok, (resolved,) = ev.resolve(fired.alert_id, "ops")
    assert ok and resolved.detail["by"] == "ops"
    assert ev.get(fired.alert_id).resolved_by == "ops"
    assert ev.resolve(fired.alert_id, "ops") == (True, [])  # already resolved
    clock.advance(10)
    assert ev.evaluate() == [] and ev.active() == []  # still true, not raised again
    cond.set(0)
    clock.advance(10)
    ev.evaluate()
    cond.set(5)
    clock.advance(10)
    (again,) = ev.evaluate()
    assert again.kind.value == "fired" and again.alert_id != fired.alert_id


def test_silenced_alert_tracks_state_but_is_not_notified(make_evaluator, conditions: Conditions,
                                                          clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1"))
    sent = Recorder()
    ev.add_listener(sent)
    ev.add_silence(silence('alertname="x"', "symbol=~B.*", start=clock.now, end=clock.now + 300))
    cond.set(5, symbol="BTC")
    cond.set(5, symbol="ETH")
    events = ev.evaluate()
    assert sorted(str(e.suppressed)[:9] for e in events) == ["None", "silenced:"]
    assert len(ev.firing()) == 2
    assert [a.labels["symbol"] for a, _ in sent.calls] == ["ETH"]
    clock.advance(300)  # the silence ends while BTC still fires
    (late,) = ev.evaluate()
    assert late.notify and ev.get(late.alert_id).labels["symbol"] == "BTC"


def test_silence_matchers() -> None:
    labels = {"alertname": "cpu", "severity": "warning"}
    assert LabelMatcher.parse('severity!="critical"').matches(labels)
    assert not LabelMatcher.parse("severity!~warn.*").matches(labels)
    assert not LabelMatcher.parse("severity=~warn").matches(labels)  # anchored
    assert LabelMatcher.parse('team=""').matches(labels)  # missing label is ""
    with pytest.raises(ValueError, match="bad regex"):
        LabelMatcher.parse("a=~(")
    with pytest.raises(ValueError, match="not a label matcher"):
        LabelMatcher.parse("just words")
    with pytest.raises(ValueError, match="must be after"):
        silence("a=b", start=10, end=10)


def test_critical_alert_inhibits_warnings_of_its_component(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    crit = conditions.add("c", ">", 90)
    warn = conditions.add("w", ">", 75)
    disk = conditions.add("d", ">", 85)
    ev = make_evaluator(
        AlertRule("cpu_crit", "c", severity=AlertSeverity.CRITICAL, labels={"component": "cpu"}),
        AlertRule("cpu_warn", "w", severity=AlertSeverity.WARNING, labels={"component": "cpu"}),
        AlertRule("disk_warn", "d", severity=AlertSeverity.WARNING, labels={"component": "disk"}),
    )
    disk.set(90)
    crit.set(95)
    warn.set(95)
    events = {ev.get(e.alert_id).rule_name: e for e in ev.evaluate()}
    assert events["cpu_crit"].notify
    assert events["cpu_warn"].suppressed == "inhibited"
    assert events["disk_warn"].notify
    crit.set(80)  # the critical resolves; the warning is still firing
    clock.advance(10)
    late = {ev.get(e.alert_id).rule_name: e for e in ev.evaluate()}
    assert late["cpu_warn"].kind.value == "fired" and late["cpu_warn"].notify


def test_custom_alert_shares_the_lifecycle(make_evaluator, clock: Clock) -> None:
    ev = make_evaluator(custom_policy=AlertRule("custom", "custom", escalation_minutes=5))
    sent = Recorder()
    ev.add_listener(sent)
    alert, (fired,) = ev.create_custom_alert("Trade failed", "boom", AlertSeverity.CRITICAL)
    assert alert.state is AlertState.FIRING and fired.notify
    assert alert.labels == {"alertname": "Trade failed", "severity": "critical"}
    same, events = ev.create_custom_alert("Trade failed", "boom again", AlertSeverity.CRITICAL)
    assert same.id == alert.id and events == [] and same.message == "boom again"
    clock.advance(300)
    ev.evaluate()
    assert alert.severity is AlertSeverity.EMERGENCY
    clock.advance(3600)
    ev.evaluate()
    assert alert.state is AlertState.FIRING  # custom alerts never resolve by themselves
    ev.acknowledge(alert.id, "me")
    ev.resolve(alert.id)
    assert sent.kinds() == ["fired", "escalated", "acknowledged", "resolved"]
    other, _ = ev.create_custom_alert("Trade failed", "new", AlertSeverity.CRITICAL)
    assert other.id != alert.id


def test_listeners_see_notifiable_or_all_events_and_a_failing_one_is_isolated(
    make_evaluator, conditions: Conditions, caplog: pytest.LogCaptureFixture,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", for_=10))
    everything, notifiable = Recorder(), Recorder()

    def broken(alert: object, event: object) -> None:
        raise RuntimeError("listener bug")

    ev.add_listener(broken, notifiable_only=False)
    ev.add_listener(everything, notifiable_only=False)
    ev.add_listener(notifiable)
    cond.set(5)
    ev.evaluate()
    ev.evaluate(ev.clock() + 10)
    assert everything.kinds() == ["pending", "fired"]
    assert notifiable.kinds() == ["fired"]
    assert "alerting.listener" in caplog.text
