"""Alert states as in Prometheus: pending (for), firing, keep-firing, hysteresis, resolve."""

from __future__ import annotations

import pytest

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEventKind, AlertRule, AlertSeverity, AlertState
from otel_botmon.query import MetricHistory, MetricKind, _eval

from .conftest import Clock, Conditions


def kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.kind.value for e in events]


def test_condition_must_hold_for_before_firing(make_evaluator, conditions: Conditions,
                                               clock: Clock) -> None:
    cond = conditions.add("cpu > 90", ">", 90)
    ev = make_evaluator(AlertRule("cpu_high", "cpu > 90", for_=60))
    cond.set(95)
    assert kinds(ev.evaluate()) == ["pending"]
    assert [a.state for a in ev.pending()] == [AlertState.PENDING]
    clock.advance(59)
    assert ev.evaluate() == []
    clock.advance(1)
    events = ev.evaluate()
    assert kinds(events) == ["fired"]
    (alert,) = ev.firing()
    assert alert.fired_at == clock.now and alert.started_at == clock.now - 60


def test_zero_for_fires_at_once_and_only_once(make_evaluator, conditions: Conditions,
                                             clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1"))
    cond.set(5)
    assert kinds(ev.evaluate()) == ["fired"]
    for _ in range(5):
        clock.advance(10)
        assert ev.evaluate() == []
    assert len(ev.firing()) == 1


def test_pending_alert_whose_condition_clears_ends_inactive(make_evaluator, conditions: Conditions,
                                                            clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", for_=60))
    cond.set(5)
    (pending,) = ev.evaluate()
    clock.advance(30)
    cond.set(0)
    (ended,) = ev.evaluate()
    assert ended.kind is AlertEventKind.INACTIVE and ended.alert_id == pending.alert_id
    assert ended.notify is False  # it never fired: nobody is told
    assert ev.active() == [] and ev.history_list() == []
    gone = ev.get(pending.alert_id)
    assert gone is not None and gone.state is AlertState.INACTIVE
    assert [e.kind for e in gone.events] == [AlertEventKind.PENDING, AlertEventKind.INACTIVE]
    assert ev.acknowledge(pending.alert_id, "ann") == (False, [])
    cond.set(5)
    clock.advance(30)
    ev.evaluate()
    (alert,) = ev.pending()
    assert alert.started_at == clock.now  # the for-timer started over


def test_firing_alert_resolves_when_condition_clears(make_evaluator, conditions: Conditions,
                                                     clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1"))
    cond.set(5)
    (fired,) = ev.evaluate()
    clock.advance(10)
    cond.set(0.5)
    (resolved,) = ev.evaluate()
    assert resolved.kind is AlertEventKind.RESOLVED
    assert resolved.detail["reason"] == "condition cleared"
    alert = ev.get(fired.alert_id)
    assert alert is not None and alert.state is AlertState.RESOLVED
    assert alert.resolved_at == clock.now and alert.resolved_by is None
    assert ev.active() == []


def test_keep_firing_for_holds_the_alert_after_the_condition_clears(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", keep_firing_for=120))
    cond.set(5)
    ev.evaluate()
    cond.set(0)
    for _ in range(11):  # 0..110 s after the condition cleared
        assert ev.evaluate() == []
        clock.advance(10)
    # flapping back resets the keep-firing timer
    cond.set(5)
    assert ev.evaluate() == []
    cond.set(0)
    clock.advance(10)
    assert ev.evaluate() == []
    clock.advance(119)
    assert ev.evaluate() == []
    clock.advance(1)
    assert kinds(ev.evaluate()) == ["resolved"]


def test_recovery_threshold_keeps_firing_until_value_crosses_it(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("cpu > 90", ">", 90)
    ev = make_evaluator(AlertRule("cpu", "cpu > 90", recovery_threshold=80))
    cond.set(95)
    assert kinds(ev.evaluate()) == ["fired"]
    cond.set(85)  # below the trigger, above the recovery threshold
    clock.advance(10)
    assert ev.evaluate() == []
    assert ev.firing()[0].value == 85
    cond.set(79)
    clock.advance(10)
    assert kinds(ev.evaluate()) == ["resolved"]


def test_recovery_threshold_for_a_below_condition(make_evaluator, conditions: Conditions,
                                                  clock: Clock) -> None:
    cond = conditions.add("win_rate < 40", "<", 40)
    ev = make_evaluator(AlertRule("wr", "win_rate < 40", recovery_threshold=50))
    cond.set(30)
    ev.evaluate()
    cond.set(45)
    clock.advance(10)
    assert ev.evaluate() == []
    cond.set(55)
    clock.advance(10)
    assert kinds(ev.evaluate()) == ["resolved"]


def test_recovery_threshold_needs_an_ordering_comparison(make_evaluator,
                                                         conditions: Conditions) -> None:
    conditions.add("up", None)
    with pytest.raises(ValueError, match="recovery_threshold"):
        make_evaluator(AlertRule("u", "up", recovery_threshold=1))


def test_one_alert_per_series_with_labels_from_its_attributes(
    make_evaluator, conditions: Conditions,
) -> None:
    cond = conditions.add("lat > 1", ">", 1)
    ev = make_evaluator(AlertRule("lat", "lat > 1", severity=AlertSeverity.CRITICAL,
                                  labels={"team": "ops"}))
    cond.set(2, exchange__name="binance")
    cond.set(3, exchange__name="kraken")
    cond.set(0.5, exchange__name="okx")
    events = ev.evaluate()
    assert kinds(events) == ["fired", "fired"]
    labels = sorted((a.labels for a in ev.firing()), key=lambda x: x["exchange.name"])
    assert labels == [
        {"exchange.name": "binance", "team": "ops", "alertname": "lat", "severity": "critical"},
        {"exchange.name": "kraken", "team": "ops", "alertname": "lat", "severity": "critical"},
    ]
    assert len({a.fingerprint for a in ev.firing()}) == 2


def test_fingerprint_is_stable_and_dedups_across_cycles(make_evaluator, conditions: Conditions,
                                                        clock: Clock) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1"))
    cond.set(2, symbol="BTC")
    ev.evaluate()
    first = ev.firing()[0]
    clock.advance(10)
    cond.set(7, symbol="BTC")
    assert ev.evaluate() == []
    (same,) = ev.firing()
    assert same.id == first.id and same.value == 7


def test_annotations_are_templated_with_value_and_labels(make_evaluator,
                                                         conditions: Conditions) -> None:
    cond = conditions.add("lat > 1", ">", 1)
    ev = make_evaluator(AlertRule(
        "lat", "lat > 1", description="slow",
        annotations={"summary": "Slow {labels[exchange.name]}",
                     "description": "p95 {value:.2f}s on {{ $labels.exchange.name }} ({rule})",
                     "unsafe": "{value.__class__} {labels[missing]}"},
    ))
    cond.set(2.3456, exchange__name="binance")
    ev.evaluate()
    (alert,) = ev.firing()
    assert alert.title == "Slow binance"
    assert alert.annotations["description"] == "p95 2.35s on binance (lat)"
    assert alert.message == "p95 2.35s on binance (lat)"
    assert alert.annotations["unsafe"] == "{value.__class__} "


def test_a_rule_that_raises_is_skipped_and_others_still_run(
    make_evaluator, conditions: Conditions, caplog: pytest.LogCaptureFixture,
) -> None:
    broken = conditions.add("gone > 1", ">", 1)
    fine = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("broken", "gone > 1"), AlertRule("fine", "x > 1"))
    broken.set(5)
    ev.evaluate()
    broken.raise_error = TypeError("metric changed type")
    fine.set(5)
    events = ev.evaluate()
    assert [(e.kind.value, ev.get(e.alert_id).rule_name) for e in events] == [("fired", "fine")]
    # the broken rule's alert keeps its state rather than resolving on an error
    assert {a.rule_name for a in ev.firing()} == {"broken", "fine"}
    assert "alerting.rule.broken" in caplog.text


@pytest.mark.parametrize(("op", "threshold", "expected"), [
    (">", 5, [7, 9]), (">=", 5, [5, 7, 9]), ("<", 5, [1]), ("<=", 5, [1, 5]),
    ("==", 5, [5]), ("!=", 5, [1, 7, 9, "nan"]),  # NaN != 5 holds, as in PromQL
])
def test_rules_on_one_left_hand_side_share_its_evaluation(
    clock, monkeypatch: pytest.MonkeyPatch, op: str, threshold: float, expected: list[float],
) -> None:
    history = MetricHistory()
    for i, value in enumerate([1, 5, 7, 9, float("nan")]):
        history.add_point("v", {"s": str(i)}, value, clock.now, kind=MetricKind.GAUGE)
    selections = []
    instant = _eval._instant
    monkeypatch.setattr(_eval, "_instant", lambda *a: selections.append(a) or instant(*a))
    rules = [AlertRule("all", "v != 0"), AlertRule("some", f"v {op} {threshold}")]
    ev = AlertEvaluator(rules, history, clock=clock)
    ev.evaluate()
    values = [a.value for a in ev.firing() if a.rule_name == "some"]
    by_rule = sorted(v for v in values if v == v) + ["nan"] * sum(v != v for v in values)
    assert by_rule == expected
    assert len(selections) == 1  # the query engine reads `v` once for both rules
