"""The lean trade aggregation exports what the SDK's instruments export for the same trades.

``BOTMON_TRADE_METRICS=sdk`` makes ``configure()`` record trades through the SDK's
instruments (the reference); by default one lean aggregation feeds every reader. Both
are compared on generated trade sequences through the in-memory reader here, and through
a real OTLP collector in tests/integration/otlp/test_trade_metrics_otlp.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument._trade_metrics import TradeMetrics
from otel_botmon.instrument.trading import record_position_closed, trade
from tests.trade_replay import TRADE_METRICS, TradeStep, replay, trade_steps


def _snapshot(data: Any) -> dict[tuple[str, frozenset[Any]], tuple[Any, ...]]:
    """Every trade metric point: (name, attributes) -> (unit, description, kind, values)."""
    found: dict[tuple[str, frozenset[Any]], tuple[Any, ...]] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in TRADE_METRICS:
                    continue
                for p in metric.data.data_points:
                    if hasattr(p, "bucket_counts"):
                        values: tuple[Any, ...] = (
                            "histogram", p.count, p.sum, tuple(p.bucket_counts),
                            tuple(p.explicit_bounds), p.min, p.max,
                            metric.data.aggregation_temporality)
                    else:
                        values = (type(metric.data).__name__, type(p.value).__name__,
                                  p.value, getattr(metric.data, "is_monotonic", None),
                                  getattr(metric.data, "aggregation_temporality", None))
                    key = (metric.name, frozenset(p.attributes.items()))
                    assert key not in found, f"two points for {key}"
                    found[key] = (metric.unit, metric.description, sm.scope.name, *values)
    return found


def _recorded(mode: str, steps: Sequence[TradeStep], collections: int = 1) -> Any:
    saved = os.environ.get(telemetry.BOTMON_TRADE_METRICS)
    os.environ[telemetry.BOTMON_TRADE_METRICS] = mode
    try:
        tel = telemetry.configure(f"lean-vs-{mode}", set_global=False)
        assert (tel.trade_metrics is None) == (mode == "sdk")
        # collections in between: the SDK sums per collection, the lean path per trade
        chunk = max(1, math.ceil(len(steps) / collections))
        for start in range(0, len(steps), chunk):
            replay(steps[start:start + chunk])
            tel.metric_reader.get_metrics_data()
        return tel.metric_reader.get_metrics_data()
    finally:
        telemetry.shutdown()
        if saved is None:
            os.environ.pop(telemetry.BOTMON_TRADE_METRICS, None)
        else:
            os.environ[telemetry.BOTMON_TRADE_METRICS] = saved


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(trade_steps(), min_size=1, max_size=30),
       collections=st.integers(1, 4))
def test_lean_metrics_equal_the_sdk_instruments(
    steps: list[TradeStep], collections: int
) -> None:
    sdk = _snapshot(_recorded("sdk", steps, collections))
    lean = _snapshot(_recorded("lean", steps, collections))
    assert sdk, "the reference recorded nothing"
    assert lean == sdk


def test_past_the_cardinality_cap_both_paths_share_one_overflow_series() -> None:
    steps = [TradeStep("record", f"S{i:04d}USDT", "BUY", "MARKET", 0.5, 1024.0, "filled",
                       0.0, 62.5) for i in range(conv.CARDINALITY_LIMIT + 5)]
    sdk = _snapshot(_recorded("sdk", steps))
    lean = _snapshot(_recorded("lean", steps))
    overflow = ("botmon.trades", frozenset({("otel.metric.overflow", True)}))
    assert lean[overflow][3:6] == ("Sum", "int", 5)
    assert lean == sdk


@pytest.fixture
def lean_pipeline() -> Iterator[telemetry.Telemetry]:
    tel = telemetry.configure("lean", set_global=False)
    yield tel
    telemetry.shutdown()


def test_other_metrics_still_go_through_the_sdk(lean_pipeline: telemetry.Telemetry) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
        pass
    record_position_closed("BTCUSDT", 2.5)
    data = lean_pipeline.metric_reader.get_metrics_data()
    scopes = [sm for rm in data.resource_metrics for sm in rm.scope_metrics
              if sm.scope.name == conv.INSTRUMENTATION_SCOPE]
    assert len(scopes) == 1  # the trade metrics joined the SDK's own scope
    names = {m.name for m in scopes[0].metrics}
    assert {"botmon.trades", "botmon.trade.duration", "botmon.pnl.realized"} <= names


def test_a_reader_preferring_deltas_gets_the_sdk_path() -> None:
    from opentelemetry.sdk.metrics import Counter, Histogram
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    delta = InMemoryMetricReader(preferred_temporality={
        Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA})
    try:
        tel = telemetry.configure("delta", metric_readers=[delta], set_global=False)
        assert tel.trade_metrics is None
        with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
            pass
        names = {m.name for rm in delta.get_metrics_data().resource_metrics
                 for sm in rm.scope_metrics for m in sm.metrics}
        assert "botmon.trades" in names
    finally:
        telemetry.shutdown()


def _through_sdk_instruments(monkeypatch: pytest.MonkeyPatch, name: str,
                             make_reader: Callable[[], InMemoryMetricReader],
                             steps: list[TradeStep]) -> dict[str, Any]:
    """``steps`` replayed with BOTMON_TRADE_METRICS=sdk and =lean, a new reader from
    ``make_reader`` each time (one the lean path refuses: the trade metrics must be the
    SDK's instruments either way): what each exported."""
    seen = {}
    for mode in ("sdk", "lean"):
        reader = make_reader()
        monkeypatch.setenv(telemetry.BOTMON_TRADE_METRICS, mode)
        try:
            tel = telemetry.configure(f"{name}-{mode}", metric_readers=[reader],
                                      set_global=False)
            assert tel.trade_metrics is None  # the SDK's instruments, for every reader
            replay(steps)
            seen[mode] = _snapshot(reader.get_metrics_data())
        finally:
            telemetry.shutdown()
    return seen


@pytest.mark.parametrize("aggregation", ["drop", "last_value"])
def test_a_reader_preferring_another_counter_aggregation_gets_what_the_sdk_gives(
    aggregation: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.metrics import Counter
    from opentelemetry.sdk.metrics.view import DropAggregation, LastValueAggregation

    chosen = DropAggregation() if aggregation == "drop" else LastValueAggregation()
    steps = [TradeStep("with", "BTCUSDT", "BUY", None, 0.5, 1024.0, "filled_at", 2.0, 0.0),
             TradeStep("with", "BTCUSDT", "BUY", None, 0.25, 1024.0, "filled", 0.0, 0.0)]
    seen = _through_sdk_instruments(
        monkeypatch, "aggregation",
        lambda: InMemoryMetricReader(preferred_aggregation={Counter: chosen}), steps)
    assert ("botmon.trades" in {name for name, _ in seen["sdk"]}) == (aggregation != "drop")
    assert seen["lean"] == seen["sdk"]


def test_a_forked_child_starts_from_empty_cells() -> None:
    from opentelemetry.sdk.resources import Resource

    lean = TradeMetrics(Resource({}))
    lean.record(("BTCUSDT", "BUY", None, "filled", None), 0.5, 1.0, 10.0, None, 0.0)
    assert lean.metrics()
    lean._after_fork_in_child()
    assert lean.metrics() == []
    lean.record(("BTCUSDT", "BUY", None, "filled", None), 0.5, 1.0, 10.0, None, 0.0)
    assert {m.name for m in lean.metrics()} == {
        "botmon.trade.duration", "botmon.trades", "botmon.trade.volume",
        "botmon.trade.notional"}


def test_a_reader_with_another_counter_cap_gets_what_the_sdk_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One lean aggregation serves every reader; the SDK caps a counter's series per
    # reader (its cardinality_limits, 2,000 unless set: a user's reader, the Prometheus
    # reader). A reader whose counter cap differs gets the SDK's instruments.
    from opentelemetry.sdk.metrics import Counter

    steps = [TradeStep("record", f"S{i}USDT", "BUY", "MARKET", 0.5, 1024.0, "filled",
                       0.0, 62.5) for i in range(5)]
    seen = _through_sdk_instruments(
        monkeypatch, "cap", lambda: InMemoryMetricReader(cardinality_limits={Counter: 3}),
        steps)
    overflow = ("botmon.trades", frozenset({("otel.metric.overflow", True)}))
    assert seen["sdk"][overflow][3:6] == ("Sum", "int", 2)
    assert seen["lean"] == seen["sdk"]


def test_the_prometheus_reader_keeps_the_lean_path() -> None:
    # its counters are capped as the in-memory reader's (conventions.CARDINALITY_LIMIT)
    try:
        tel = telemetry.configure("prom", prometheus_port=0, set_global=False)
        assert tel.trade_metrics is not None
    finally:
        telemetry.shutdown()
