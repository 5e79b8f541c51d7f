"""Evaluating conditions over a MetricHistory: PromQL semantics, derived values."""

from __future__ import annotations

import math

import pytest

from otel_botmon import conventions as conv
from otel_botmon.query import Labels, MetricHistory, MetricKind, _maths, compile_condition
from tests.unit.expr._reference import extrapolated_change

C = MetricKind.COUNTER


def values(text: str, history: MetricHistory, now: float) -> dict[Labels, float]:
    return {s.labels: s.value for s in compile_condition(text).evaluate(history, now)}


def one(text: str, history: MetricHistory, now: float) -> float | None:
    found = values(text, history, now)
    assert len(found) <= 1
    return next(iter(found.values()), None)


@pytest.fixture
def history() -> MetricHistory:
    return MetricHistory()


def test_guide_win_rate_below_50(history: MetricHistory) -> None:
    closed = conv.POSITIONS_CLOSED.name
    history.add_point(closed, {"trading.result": "win", "trading.symbol": "A"}, 2, 0, kind=C)
    history.add_point(closed, {"trading.result": "loss", "trading.symbol": "A"}, 3, 0, kind=C)
    history.add_point(closed, {"trading.result": "loss", "trading.symbol": "B"}, 1, 0, kind=C)
    cond = compile_condition("win_rate < 50")
    [sample] = cond.evaluate(history, 10)
    assert sample.value == pytest.approx(100 * 2 / 6)
    assert dict(sample.labels) == {}


def test_win_rate_is_zero_before_the_first_win_and_absent_before_any_close(
    history: MetricHistory,
) -> None:
    assert compile_condition("win_rate < 50").evaluate(history, 0) == []
    history.add_point(conv.POSITIONS_CLOSED.name, {"trading.result": "loss"}, 4, 0, kind=C)
    assert one("win_rate < 50", history, 1) == 0.0


def test_cpu_memory_disk_are_percent(history: MetricHistory) -> None:
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.8, 0)
    history.add_point(conv.SYSTEM_MEMORY_UTILIZATION.name, {}, 0.5, 0)
    fs = conv.SYSTEM_FILESYSTEM_UTILIZATION.name
    history.add_point(fs, {"system.filesystem.mountpoint": "/"}, 0.3, 0)
    history.add_point(fs, {"system.filesystem.mountpoint": "/data"}, 0.9, 0)
    assert one("cpu > 75", history, 1) == pytest.approx(80.0)
    assert one("cpu > 85", history, 1) is None
    assert one("memory", history, 1) == pytest.approx(50.0)
    assert one("disk > 85", history, 1) == pytest.approx(90.0)


def test_health_status_rule_of_the_seed_matches_per_component(history: MetricHistory) -> None:
    health = conv.HEALTH_STATUS.name
    history.add_point(health, {"health.component": "exchange_api"}, 2, 0)
    history.add_point(health, {"health.component": "database"}, 0, 0)
    found = values(f'{health}{{health.component="exchange_api"}} >= 2', history, 5)
    assert found == {Labels({"health.component": "exchange_api"}): 2.0}
    assert values(f'{health}{{health.component="database"}} >= 2', history, 5) == {}


def test_matchers_equal_not_equal_regex(history: MetricHistory) -> None:
    name = conv.EXCHANGE_RATELIMIT_USED.name
    for endpoint, value in (("order", 1), ("order_test", 2), ("ticker", 3)):
        history.add_point(name, {"exchange.endpoint": endpoint}, value, 0)
    def got(m: str) -> list[float]:
        return sorted(values(f"{name}{{{m}}}", history, 0).values())
    assert got('exchange.endpoint="order"') == [1]
    assert got('exchange.endpoint!="order"') == [2, 3]
    assert got('exchange.endpoint=~"order.*"') == [1, 2]
    assert got('exchange.endpoint!~"order.*"') == [3]
    assert got('exchange.endpoint=~"rde"') == []  # regexes are anchored
    assert got('missing.label=""') == [1, 2, 3]  # a missing label matches ""


def test_latest_value_respects_lookback_and_staleness(history: MetricHistory) -> None:
    name = conv.HEALTH_STATUS.name
    history.add_point(name, {"c": "x"}, 1, 0)
    assert one(name, history, 300) == 1.0  # 5 min lookback, inclusive
    assert one(name, history, 301) is None
    history.add_point(name, {"c": "x"}, 2, 310)
    history.mark_stale(name, {"c": "x"}, 320)
    assert one(name, history, 315) == 2.0
    assert one(name, history, 325) is None


def test_increase_and_rate_extrapolate_like_prometheus(history: MetricHistory) -> None:
    name = conv.TRADES.name
    for t in range(5, 60, 10):  # 5, 15, ... 55 -> values 5 .. 55
        history.add_point(name, {}, t, t, kind=C)
    # 50 counted over 50 s, extrapolated 5 s to each window edge: 60
    assert one(f"increase({name}[1m])", history, 60) == pytest.approx(60.0)
    assert one(f"rate({name}[1m])", history, 60) == pytest.approx(1.0)


def test_increase_handles_counter_resets(history: MetricHistory) -> None:
    name = conv.TRADES.name
    for t, v in ((0, 10), (10, 20), (20, 5), (30, 15), (40, 25), (50, 35), (60, 45)):
        history.add_point(name, {}, v, t, kind=C)
    # 20 -> 5 is a reset: 10..20 (+10), 0..45 (+45), minus nothing
    assert one(f"increase({name}[1m])", history, 60) == pytest.approx(55.0)


def test_rate_needs_two_points(history: MetricHistory) -> None:
    history.add_point(conv.TRADES.name, {}, 1, 0, kind=C)
    assert one(f"rate({conv.TRADES.name}[1m])", history, 30) is None


def test_extrapolation_to_zero_for_young_counters() -> None:
    # a counter that starts at 3 and grows 1/s: do not extrapolate below zero
    pts = [(30.0, 3.0), (40.0, 13.0), (50.0, 23.0), (60.0, 33.0)]
    got = extrapolated_change(pts, 0.0, 60.0, counter=True, per_second=False)
    # the counter would reach zero 3 s before its first point: extrapolate only those 3 s
    assert got == pytest.approx(30 * 33 / 30)


def test_over_time_functions(history: MetricHistory) -> None:
    name = conv.SYSTEM_CPU_UTILIZATION.name
    for t, v in ((0, 0.2), (30, 0.4), (60, 0.9)):
        history.add_point(name, {}, v, t)
    assert one(f"avg({name}[1m])", history, 60) == pytest.approx(0.5)
    assert one(f"min({name}[1m])", history, 60) == pytest.approx(0.2)
    assert one(f"max({name}[30s])", history, 60) == pytest.approx(0.9)
    assert one(f"count({name}[1m])", history, 60) == 3
    assert one(f"sum({name}[1m])", history, 60) == pytest.approx(1.5)


def test_aggregation_by_label(history: MetricHistory) -> None:
    name = conv.TRADES.name
    history.add_point(name, {"trading.symbol": "A", "trading.side": "BUY"}, 2, 0, kind=C)
    history.add_point(name, {"trading.symbol": "A", "trading.side": "SELL"}, 3, 0, kind=C)
    history.add_point(name, {"trading.symbol": "B", "trading.side": "BUY"}, 7, 0, kind=C)
    got = values(f"sum by (trading.symbol) ({name}) > 4", history, 0)
    assert got == {Labels({"trading.symbol": "A"}): 5.0, Labels({"trading.symbol": "B"}): 7.0}
    assert one(f"count({name})", history, 0) == 3
    assert one("total_trades", history, 0) == 12


def _trade_histogram(history: MetricHistory, symbol: str, per_step: list[int]) -> None:
    bounds = list(conv.DURATION_BUCKETS_S)
    counts = [0] * (len(bounds) + 1)
    for step in range(0, 31):
        t = step * 10.0
        for i, n in enumerate(per_step):
            counts[i] += n
        history.add_histogram_point(
            conv.TRADE_DURATION.name, {"trading.symbol": symbol}, bounds, counts,
            0.0, sum(counts), t,
        )


def test_p95_from_histogram_bucket_rates(history: MetricHistory) -> None:
    idx_1s = conv.DURATION_BUCKETS_S.index(1.0)
    per_step = [0] * (len(conv.DURATION_BUCKETS_S) + 1)
    per_step[idx_1s] = 9  # (0.5, 1]
    per_step[idx_1s + 1] = 1  # (1, 2]
    _trade_histogram(history, "BTC", per_step)
    got = values(f"p95({conv.TRADE_DURATION.name}[5m])", history, 300)
    # rank 0.95*10 = 9.5 of 10 per step: halfway into (1, 2]
    assert got == {Labels({"trading.symbol": "BTC"}): pytest.approx(1.5)}
    assert one("trade_latency_p95 > 2s", history, 300) is None
    assert one("trade_latency_p95 > 1400ms", history, 300) == pytest.approx(1.5)


def test_p95_by_aggregates_series(history: MetricHistory) -> None:
    idx = conv.DURATION_BUCKETS_S.index(5.0)
    slow = [0] * (len(conv.DURATION_BUCKETS_S) + 1)
    slow[idx] = 1  # (2, 5]
    fast = [0] * (len(conv.DURATION_BUCKETS_S) + 1)
    fast[0] = 19  # <= 1 ms
    _trade_histogram(history, "A", slow)
    _trade_histogram(history, "B", fast)
    per_series = values(f"p95({conv.TRADE_DURATION.name}[5m]) > 2s", history, 300)
    assert list(per_series) == [Labels({"trading.symbol": "A"})]
    assert one("trade_latency_p95", history, 300) == pytest.approx(0.001 * 19 / 19)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    return _maths.histogram_quantile(q, [b for b, _ in buckets], [c for _, c in buckets])


def test_histogram_quantile_edge_cases() -> None:
    inf = math.inf
    assert math.isnan(histogram_quantile(0.5, [(1.0, 0.0), (inf, 0.0)]))
    assert math.isnan(histogram_quantile(0.5, [(1.0, 3.0)]))  # no +Inf bucket
    assert histogram_quantile(0.99, [(1.0, 1.0), (2.0, 1.0), (inf, 5.0)]) == 2.0
    assert histogram_quantile(0.5, [(1.0, 2.0), (inf, 4.0)]) == 1.0
    assert histogram_quantile(-1, [(1.0, 2.0), (inf, 4.0)]) == -inf
    assert histogram_quantile(2, [(1.0, 2.0), (inf, 4.0)]) == inf
    # non-monotonic counts are repaired rather than giving nonsense
    assert histogram_quantile(0.5, [(1.0, 4.0), (2.0, 2.0), (inf, 4.0)]) == 0.5


def test_api_error_rate_counts_errors_per_minute(history: MetricHistory) -> None:
    name = conv.EXCHANGE_REQUESTS.name
    for t in range(0, 70, 10):
        history.add_point(name, {"http.response.status_code": "200"}, t * 10, t, kind=C)
        history.add_point(name, {"http.response.status_code": "429", "error.type": "429"},
                          t // 5, t, kind=C)
        history.add_point(name, {"error.type": "TimeoutError"}, t // 10, t, kind=C)
    # 12 + 6 errors in the last minute; the 429 series is counted once
    assert one("api_error_rate", history, 60) == pytest.approx(18.0)
    assert one("api_error_rate > 10", history, 60) == pytest.approx(18.0)


def test_and_or_with_labelless_sides(history: MetricHistory) -> None:
    health = conv.HEALTH_STATUS.name
    history.add_point(health, {"health.component": "a"}, 2, 0)
    history.add_point(health, {"health.component": "b"}, 2, 0)
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.95, 0)
    both = values(f"{health} >= 2 and cpu > 90", history, 0)
    assert set(both) == {Labels({"health.component": "a"}), Labels({"health.component": "b"})}
    assert values(f"{health} >= 2 and cpu > 99", history, 0) == {}
    either = values(f"{health} >= 3 or cpu > 90", history, 0)
    assert either == {Labels(): pytest.approx(95.0)}


def test_and_between_series_matches_labels(history: MetricHistory) -> None:
    health, lim = conv.HEALTH_STATUS.name, conv.EXCHANGE_RATELIMIT_USED.name
    history.add_point(health, {"x": "1"}, 5, 0)
    history.add_point(health, {"x": "2"}, 5, 0)
    history.add_point(lim, {"x": "2"}, 9, 0)
    assert set(values(f"{health} > 1 and {lim} > 1", history, 0)) == {Labels({"x": "2"})}
    # arithmetic between series matches equal labels
    assert values(f"{lim} - {health}", history, 0) == {Labels({"x": "2"}): 4.0}


def test_broadcast_of_a_labelless_side(history: MetricHistory) -> None:
    health = conv.HEALTH_STATUS.name
    history.add_point(health, {"c": "a"}, 50, 0)
    history.add_point(health, {"c": "b"}, 90, 0)
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.6, 0)
    assert set(values(f"{health} > cpu", history, 0)) == {Labels({"c": "b"})}
    assert values(f"cpu < {health}", history, 0) == {Labels({"c": "b"}): pytest.approx(60.0)}


def test_not_is_the_inverted_comparison(history: MetricHistory) -> None:
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.5, 0)
    assert one("not (cpu > 90)", history, 0) == pytest.approx(50.0)
    assert one("not (cpu < 90)", history, 0) is None
    assert one("not (cpu > 90 or cpu < 10)", history, 0) == pytest.approx(50.0)


def test_ieee_arithmetic_never_raises(history: MetricHistory) -> None:
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.0, 0)
    assert one("1 / 0 > 1", history, 0) == math.inf
    assert one("cpu / 0 == cpu / 0", history, 0) is None  # NaN is never equal
    assert one("-1 / 0 < 0", history, 0) == -math.inf
    assert one("(5 % 0) != 1", history, 0) is not None
    assert one("1e308 * 1e308 > 0", history, 0) == math.inf


def test_scalar_condition_gives_one_labelless_sample(history: MetricHistory) -> None:
    assert values("2 > 1", history, 0) == {Labels(): 2.0}
    assert values("1 > 2", history, 0) == {}


def test_values_returns_left_side_regardless_of_comparison(history: MetricHistory) -> None:
    history.add_point(conv.SYSTEM_CPU_UTILIZATION.name, {}, 0.5, 0)
    cond = compile_condition("cpu > 90")
    assert cond.evaluate(history, 0) == []
    [sample] = cond.values(history, 0)
    assert sample.value == pytest.approx(50.0)


def test_missing_and_retyped_metrics_yield_nothing(history: MetricHistory) -> None:
    name = conv.SYSTEM_CPU_UTILIZATION.name
    assert compile_condition("cpu > 0").evaluate(history, 0) == []
    history.add_histogram_point(name, {}, [1.0], [1, 0], 1.0, 1, 0)  # now a histogram
    assert compile_condition("cpu > 0").evaluate(history, 0) == []
    assert compile_condition(f"rate({name}[1m]) > 0").evaluate(history, 0) == []


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_sorted_fast_path_equals_filtering_values(op: str) -> None:
    name = conv.EXCHANGE_RATELIMIT_USED.name
    values_ = [0.0, 1.0, 1.0, 2.5, -3.0, math.inf, -math.inf, math.nan, 7.0, 1.0]
    history = MetricHistory()
    for i, v in enumerate(values_):
        history.add_point(name, {"i": str(i)}, v, 0)
    for threshold in (-math.inf, -3.0, 0.5, 1.0, 7.0, math.inf):
        cond = compile_condition(f"{name} {op} {threshold}".replace("inf", "Inf"))
        got = {s.labels["i"]: s.value for s in cond.evaluate(history, 0)}
        compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__,
                   "<=": float.__le__, "==": float.__eq__, "!=": float.__ne__}[op]
        want = {s.labels["i"]: s.value for s in cond.values(history, 0)
                if compare(s.value, threshold)}
        assert got.keys() == want.keys(), (op, threshold)
