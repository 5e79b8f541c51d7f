"""A rule's labels are templates, rendered for each series at every evaluation as
Prometheus renders them (found by the differential test against promtool,
``tests/integration/rules/test_differential.py``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.compiled_rule import DuplicateAlertError
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.promexport import export_prometheus

from .conftest import Clock, Conditions, FakeSample


def test_label_templates_are_rendered_with_the_series_labels(
    make_evaluator, conditions: Conditions,
) -> None:
    cond = conditions.add("lat > 1", ">", 1)
    ev = make_evaluator(AlertRule("lat", "lat > 1", labels={
        "where": "{{ $labels.exchange.name }}", "also": "{labels[exchange.name]}-x",
        "team": "ops"}))
    cond.set(2, exchange__name="binance")
    ev.evaluate()
    (alert,) = ev.firing()
    assert alert.labels["where"] == "binance"
    assert alert.labels["also"] == "binance-x"
    assert alert.labels["team"] == "ops"


def test_a_label_template_that_renders_empty_removes_the_label(
    make_evaluator, conditions: Conditions,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", labels={"symbol": "{{ $labels.missing }}"}))
    cond.set(2, symbol="BTC")
    ev.evaluate()
    (alert,) = ev.firing()
    assert "symbol" not in alert.labels


def test_an_annotation_named_like_a_secret_is_redacted_as_a_label_is(
    make_evaluator, conditions: Conditions,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", annotations={
        "api_key": "{{ $labels.key }}", "summary": "key {{ $labels.symbol }}"}))
    cond.set(2, symbol="BTC", key="k-1234567890")
    ev.evaluate()
    (alert,) = ev.firing()
    assert alert.annotations == {"api_key": "REDACTED", "summary": "key BTC"}


def test_a_value_in_a_label_makes_each_value_its_own_alert(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", labels={"level": "{{ $value }}"}, for_=60.0))
    cond.set(2, symbol="BTC")
    ev.evaluate()
    clock.advance(60)
    cond.set(3, symbol="BTC")
    ev.evaluate()  # a new label set: pending again, as in Prometheus
    assert ev.firing() == []
    (alert,) = ev.active()
    assert alert.labels["level"] == "3"
    clock.advance(60)
    ev.evaluate()
    assert [a.labels["level"] for a in ev.firing()] == ["3"]


def test_series_that_labels_make_one_alert_fail_the_rule_and_keep_its_state(
    make_evaluator, conditions: Conditions, clock: Clock,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", labels={"symbol": "all"}))
    errors: list[tuple[str, BaseException]] = []
    ev.on_rule_error = lambda name, exc: errors.append((name, exc))
    cond.set(2, symbol="BTC")
    ev.evaluate()
    (before,) = ev.firing()
    clock.advance(60)
    cond.set(5, symbol="ETH")
    assert ev.evaluate() == []
    [(name, exc)] = errors
    assert name == "x" and isinstance(exc, DuplicateAlertError)
    assert "same labelset after applying alert labels" in str(exc)
    (after,) = ev.firing()
    assert after.id == before.id and after.value == 2


class _Constant:
    """A condition holding for one series with the value the test sets."""

    comparison = None
    value = 0.0

    def evaluate(self, history: object, now: float) -> list[FakeSample]:
        return [FakeSample({"symbol": "BTC"}, self.value)]

    values = evaluate


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([0.0, -0.0, 1.0, math.inf, math.nan]), st.sampled_from([0.0, -0.0]))
def test_the_value_annotation_follows_the_sign_of_zero(first: float, zero: float) -> None:
    """``{{ $value }}`` is re-rendered whenever the value changes, -0 and 0 included
    (``0 / -x`` is -0 in Prometheus, shown as ``-0``)."""
    conditions, clock, constant = Conditions(), Clock(), _Constant()
    conditions.by_text["x"] = constant  # type: ignore[assignment]
    ev = AlertEvaluator([AlertRule("x", "x", annotations={"v": "{{ $value }}"})], None,
                        clock=clock, compiler=conditions, publish_telemetry=False)
    constant.value = first
    ev.evaluate()
    clock.advance(60)
    constant.value = zero
    ev.evaluate()
    (alert,) = ev.firing()
    assert alert.annotations["v"] == ("-0" if math.copysign(1.0, zero) < 0 else "0")


def test_label_templates_export_in_go_template_form() -> None:
    rules = [AlertRule("x", "botmon.health.status > 1",
                       labels={"v": "{value:.1f}", "c": "{labels[health.component]}"})]
    exported = export_prometheus(rules, per_bot=()).to_yaml()
    assert '{{ printf "%.1f" $value }}' in exported
    assert "{{ $labels.health_component }}" in exported


@pytest.mark.parametrize("label", ["{{ $labels.a }}", "fixed"])
def test_rules_without_value_in_labels_keep_one_identity_per_series(
    make_evaluator, conditions: Conditions, clock: Clock, label: str,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    ev = make_evaluator(AlertRule("x", "x > 1", labels={"k": label}))
    cond.set(2, a="s")
    ev.evaluate()
    (first,) = ev.firing()
    clock.advance(60)
    cond.set(4, a="s")
    ev.evaluate()
    (same,) = ev.firing()
    assert same.id == first.id and same.value == 4
