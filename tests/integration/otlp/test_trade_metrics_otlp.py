"""Through a real collector, the lean trade aggregation exports what the SDK path exports.

The same generated trade sequence is recorded twice, once with the SDK's instruments
(``BOTMON_TRADE_METRICS=sdk``) and once on the default lean path, each pipeline exporting
OTLP/HTTP to rotel, which forwards to a receiver. The last cumulative point of every
trade metric (names, units, attributes, values, temporality, buckets) must be identical.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from tests.otlp_receiver import OtlpReceiver, RotelCollector, any_value
from tests.trade_replay import TRADE_METRICS, TradeStep, edge_trade_steps, replay, trade_steps

_runs = itertools.count()


def _exported(receiver: OtlpReceiver, service: str) -> dict[tuple[str, Any], tuple[Any, ...]]:
    """The newest point of each trade metric series that ``service`` exported."""
    newest: dict[tuple[str, Any], tuple[int, tuple[Any, ...]]] = {}
    for resource, scope, metric in receiver.metrics():
        if resource.get("service.name") != service or metric.name not in TRADE_METRICS:
            continue
        kind = metric.WhichOneof("data")
        data = getattr(metric, kind)
        for p in data.data_points:
            attrs = frozenset((kv.key, repr(any_value(kv.value))) for kv in p.attributes)
            # floats by repr: -0.0 is not 0.0, and NaN would equal NaN
            if kind == "histogram":
                values: tuple[Any, ...] = (
                    p.count, repr(p.sum), tuple(p.bucket_counts), tuple(p.explicit_bounds),
                    repr(p.min), repr(p.max), data.aggregation_temporality)
            else:
                values = (p.WhichOneof("value"), repr(getattr(p, p.WhichOneof("value"))),
                          data.is_monotonic, data.aggregation_temporality)
            key = (metric.name, attrs)
            found = (scope, metric.unit, metric.description, kind, *values)
            if key not in newest or p.time_unix_nano >= newest[key][0]:
                newest[key] = (p.time_unix_nano, found)
    return {key: found for key, (_, found) in newest.items()}


def _trades_exported(points: dict[tuple[str, Any], tuple[Any, ...]]) -> int:
    return sum(int(v[5]) for (name, _), v in points.items() if name == "botmon.trades")


def _export(collector: tuple[OtlpReceiver, RotelCollector], mode: str,
            steps: list[TradeStep]) -> dict[tuple[str, Any], tuple[Any, ...]]:
    receiver, rotel = collector
    service = f"trade-{mode}-{next(_runs)}"
    saved = os.environ.get(telemetry.BOTMON_TRADE_METRICS)
    os.environ[telemetry.BOTMON_TRADE_METRICS] = mode
    try:
        tel = telemetry.configure(service, otlp_endpoint=rotel.http_endpoint,
                                  export_interval_s=60.0, set_global=False)
        assert (tel.trade_metrics is None) == (mode == "sdk")
        replay(steps)
        assert tel.force_flush(10.0)
    finally:
        telemetry.shutdown()
        if saved is None:
            os.environ.pop(telemetry.BOTMON_TRADE_METRICS, None)
        else:
            os.environ[telemetry.BOTMON_TRADE_METRICS] = saved
    receiver.wait_for(lambda r: _trades_exported(_exported(r, service)) == len(steps))
    return _exported(receiver, service)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(trade_steps(), min_size=1, max_size=25))
def test_lean_trade_metrics_reach_the_collector_as_the_sdk_path_does(
    collector: tuple[OtlpReceiver, RotelCollector], steps: list[TradeStep]
) -> None:
    sdk = _export(collector, "sdk", steps)
    lean = _export(collector, "lean", steps)
    assert lean == sdk


def test_a_fixed_sequence_with_every_kind_of_trade(
    collector: tuple[OtlpReceiver, RotelCollector],
) -> None:
    steps = [
        TradeStep("with", "BTCUSDT", "BUY", "MARKET", 0.5, 65536.0, "filled_at", 2.5, 0.0),
        TradeStep("with", "BTCUSDT", "SELL", "LIMIT", 1.25, 65536.0, "partial", 0.0, 0.0),
        TradeStep("with", "ETHUSDT", "BUY", None, 2.0, 4096.0, "rejected", 0.0, 0.0),
        TradeStep("with", "ETHUSDT", "BUY", None, 2.0, 4096.0, "error", 0.0, 0.0),
        TradeStep("record", "SOLUSDT", "SELL", "MARKET", 3.0, 1024.0, "requested", -1.0,
                  125.0),
        TradeStep("record", "SOLUSDT", "SELL", "MARKET", 3.0, 1024.0, "expired", 0.0, 15.625),
    ]
    sdk = _export(collector, "sdk", steps)
    lean = _export(collector, "lean", steps)
    assert {name for name, _ in sdk} == set(TRADE_METRICS)
    assert lean == sdk


def _call(symbol: str, quantity: float | None, price: float | None, end: str = "filled",
          fill_offset: float = 0.0) -> TradeStep:
    return TradeStep("call", symbol, "BUY", None, quantity, price, end, fill_offset, 0.0)


def _untimed(symbol: str) -> TradeStep:
    return TradeStep("record", symbol, "SELL", None, 1.0, 1024.0, "filled", 0.0, None)


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edge_trade_steps(), min_size=1, max_size=25))
@example(steps=[_call("S0", 1.0, -1024.0)])  # a negative notional: the SDK drops it
@example(steps=[_call("S0", 1.0, math.inf)])  # an infinite notional
@example(steps=[_call("S0", 2.0**600, 2.0**600)])  # a finite product past the largest float
@example(steps=[_call("S0", math.inf, 1024.0)])  # an infinite volume
@example(steps=[_call("S0", 1.0, 2.0**-1000, "filled_at", 2.0**1000)])  # infinite slippage
@example(steps=[_call("S0", 1.0, math.nan, "filled_at", 8.0)])  # NaN slippage
@example(steps=[_call("S0", 1.0, -0.0)])  # a notional of -0.0 adds up to 0.0
def test_values_the_sdk_drops_are_dropped_on_the_lean_path(
    collector: tuple[OtlpReceiver, RotelCollector], steps: list[TradeStep]
) -> None:
    sdk = _export(collector, "sdk", steps)
    lean = _export(collector, "lean", steps)
    assert lean == sdk


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(edge_trade_steps(symbols=8), min_size=1, max_size=40))
# untimed trades fill the trade counter's series, not the duration histogram's
@example(steps=[*map(_untimed, ["S0", "S1", "S2"]), _call("S3", 1.0, 1024.0)])
# fills without a price fill the volume counter's series, not the notional counter's
@example(steps=[*(_call(f"S{i}", 1.0, None) for i in range(3)), _call("S3", 1.0, 1024.0)])
def test_each_trade_metric_keeps_its_own_cardinality_cap(
    collector: tuple[OtlpReceiver, RotelCollector], steps: list[TradeStep],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conv, "CARDINALITY_LIMIT", 3)  # read by configure()
    sdk = _export(collector, "sdk", steps)
    lean = _export(collector, "lean", steps)
    assert lean == sdk
