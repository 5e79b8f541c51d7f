"""A dashboard card and the alert rule on the same KPI never disagree on the same data.

Each step records trades, exchange calls and closed positions through the public API,
collects the real SDK reader once, and gives that one collect, at one time, to both the
dashboard's ``PerformanceMonitor`` and an ``AlertManager`` running the default rules plus
one rule per KPI that holds whenever the KPI has a value. Then, for every KPI:

* the card has a value exactly when its rule has an alert, and the two values are equal
  (to the card's nine decimals);
* every default rule on a KPI (``cpu > 75``, ``trade_latency_p95 > 2000ms``,
  ``api_error_rate > 10`` ...) is pending or firing exactly when the card's value is past
  the threshold the page draws for that rule (``rule_dict``, the chart's dashed line).

The trader views read the same collect: each rate-limit row's utilization is the value a
rule on ``botmon.exchange.ratelimit.utilization`` sees for that exchange, budget and
interval, and each symbol's P&L is ``sum by (trading.symbol) (botmon.pnl.realized)``.

A change of definition, window, unit or history on either side fails here.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon import record_api_call, record_position_closed, record_trade_execution
from otel_botmon.alerting.default_rules import default_rules
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertRule, AlertState
from otel_botmon.instrument.ratelimit import record_ratelimit_headers
from otel_botmon.monitor_views import rule_dict
from otel_botmon.observe.trading_view import read_trading_view
from otel_botmon.performance import PerformanceMonitor
from otel_botmon.query import KPIS

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_TO_KPI_UNIT = {None: 1.0, "%": 1.0, "s": 1.0, "ms": 0.001}
_PRECISION = 1e-9  # the card keeps nine decimals


class _Replay:
    """A reader that returns the one collect both sides are given this step."""

    def __init__(self) -> None:
        self.data: Any = None

    def get_metrics_data(self) -> Any:
        return self.data


def _catch_all(name: str) -> AlertRule:
    return AlertRule(name=f"kpi_{name}", condition=f"{name} > -1000000000000",
                     cooldown_minutes=0.0)


_VIEW_RULES = [
    AlertRule(name="view_ratelimit", cooldown_minutes=0.0,
              condition=f"{conv.EXCHANGE_RATELIMIT_UTILIZATION.name} > -1"),
    AlertRule(name="view_pnl", cooldown_minutes=0.0,
              condition=f"sum by ({conv.TRADING_SYMBOL}) ({conv.PNL_REALIZED.name})"
                        " > -1000000000000"),
]
"""What the trader views show, as rules: one alert per row."""


def _rules(trade_slow_ms: float, errors_per_minute: float) -> list[AlertRule]:
    rules = default_rules(
        trade_slow_ms=trade_slow_ms, api_errors_per_minute=errors_per_minute,
        cpu_warning=0.0, cpu_critical=0.5, memory_warning=0.0, disk_warning=0.0,
        disk_critical=100.0, api_response_time_warning_ms=100.0,
        api_response_time_critical_ms=400.0,
    )
    return rules + [_catch_all(name) for name in KPIS] + _VIEW_RULES


action = st.one_of(
    st.tuples(st.just("trade"), st.floats(1.0, 5000.0),
              st.sampled_from(["filled", "rejected", "error", "partial"])),
    st.tuples(st.just("api"), st.floats(1.0, 1500.0), st.sampled_from([200, 200, 429, 503])),
    st.tuples(st.just("close"), st.sampled_from(["BTCUSDT", "ETHUSDT"]),
              st.floats(-50.0, 50.0).map(lambda v: round(v, 2))),
    st.tuples(st.just("limit"), st.integers(0, 6000), st.integers(0, 60)),
)
step = st.tuples(st.lists(action, max_size=12), st.floats(0.5, 90.0))


def _record(item: tuple[Any, ...]) -> None:
    kind = item[0]
    if kind == "trade":
        record_trade_execution("BTCUSDT", "BUY", 0.01, 45000.0, item[1], outcome=item[2])
    elif kind == "api":
        record_api_call("create_order", item[1], item[2], exchange="binance")
    elif kind == "close":
        record_position_closed(item[1], item[2])
    else:  # Binance's weight and order-count headers, as an HTTP client sees them
        record_ratelimit_headers({"x-mbx-used-weight-1m": str(item[1]),
                                  "x-mbx-order-count-10s": str(item[2])}, exchange="binance")


def _check(manager: AlertManager, rules: list[AlertRule], values: dict[str, float | None],
           at: str, kpis: tuple[str, ...] = tuple(KPIS)) -> None:
    active = {a.rule_name: a for a in manager.get_active_alerts()
              if a.state in (AlertState.PENDING, AlertState.FIRING)}
    for name in kpis:
        card = values[name]
        alert = active.get(f"kpi_{name}")
        assert (card is None) == (alert is None), (at, name, card, alert)
        if alert is not None:
            assert card == pytest.approx(alert.value, abs=_PRECISION, rel=0), (at, name)
    for rule in rules:
        view = rule_dict(rule)
        if rule.name.startswith("kpi_") or view["metric"] not in KPIS:
            continue
        card = values[view["metric"]]
        threshold = view["threshold"] * _TO_KPI_UNIT[view["unit"]]
        if card is not None and abs(card - threshold) <= _PRECISION:
            continue  # within the card's precision of the line: either answer is honest
        holds = card is not None and _OPS[view["op"]](card, threshold)
        assert holds == (rule.name in active), (at, rule.name, card, threshold)


def _check_views(manager: AlertManager, data: Any, at: str) -> None:
    view = read_trading_view(data)
    alerts: dict[str, dict[tuple[str, ...], float | None]] = {"view_ratelimit": {}, "view_pnl": {}}
    for alert in manager.get_active_alerts():
        if alert.rule_name == "view_ratelimit":
            key = tuple(alert.labels.get(k, "") or "-" for k in (
                conv.EXCHANGE_NAME, conv.RATELIMIT_BUDGET, conv.RATELIMIT_INTERVAL))
            alerts["view_ratelimit"][key] = alert.value
        elif alert.rule_name == "view_pnl":
            alerts["view_pnl"][(alert.labels.get(conv.TRADING_SYMBOL, "") or "-",)] = alert.value
    rows = {(r["exchange"], r["budget"], r["interval"]): r["utilization"]
            for r in view["rate_limits"] if r["utilization"] is not None}
    assert rows == pytest.approx(alerts["view_ratelimit"], abs=_PRECISION, rel=0), at
    pnl = {(p["symbol"],): p["pnl"] for p in view["pnl_by_symbol"]}
    assert pnl == pytest.approx(alerts["view_pnl"], abs=1e-8, rel=0), at


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=12),
       trade_slow_ms=st.sampled_from([5.0, 300.0, 2000.0]),
       errors_per_minute=st.sampled_from([0.5, 2.0, 10.0]))
def test_cards_and_rules_on_one_kpi_read_one_value(
    telemetry: Any, steps: list[tuple[list[tuple[Any, ...]], float]],
    trade_slow_ms: float, errors_per_minute: float,
) -> None:
    # Counters carry over between examples (one pipeline); both sides start afresh each
    # example and read the same collects, so that changes nothing either may see.
    rules = _rules(trade_slow_ms, errors_per_minute)
    replay = _Replay()
    manager = AlertManager(reader=replay, rules=rules)
    monitor = PerformanceMonitor()
    assert {r.name for r in rules} == {r.name for r in manager.rules}
    now = time.time()
    for index, (actions, advance) in enumerate(steps):
        for item in actions:
            _record(item)
        now += advance
        replay.data = telemetry.metric_reader.get_metrics_data()
        sample = monitor.sample_from(replay.data, now)
        manager.evaluate_once(now)
        _check(manager, rules, sample.kpis, f"step {index}")
        _check_views(manager, replay.data, f"step {index}")
    manager.close()


def test_a_card_that_reads_another_definition_is_caught(telemetry: Any) -> None:
    """The check above fails when a card's definition drifts from its rule's."""
    from otel_botmon.query import compile_condition

    replay = _Replay()
    manager = AlertManager(reader=replay, rules=[_catch_all("api_error_rate")])
    monitor = PerformanceMonitor()
    # the page's old meaning: a 0..1 share of requests, not errors per minute
    monitor._kpis["api_error_rate"] = compile_condition(
        'sum(botmon.exchange.requests{error.type!=""}) / sum(botmon.exchange.requests)')
    now = time.time()
    caught: AssertionError | None = None
    for n in range(5):
        record_api_call("create_order", 20.0, 503, exchange="binance")
        record_api_call("create_order", 20.0, 200, exchange="binance")
        now += 10.0
        replay.data = telemetry.metric_reader.get_metrics_data()
        sample = monitor.sample_from(replay.data, now)
        manager.evaluate_once(now)
        try:
            _check(manager, [], sample.kpis, f"step {n}", kpis=("api_error_rate",))
        except AssertionError as exc:
            caught = exc
            break
    manager.close()
    assert caught is not None, "the drifted card was never told apart from its rule"
    assert "api_error_rate" in str(caught)
