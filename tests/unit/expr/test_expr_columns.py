"""The column store gives exactly what a history of one ring buffer per series gives.

``MetricHistory`` keeps a metric as rows (one per collection time) and columns (one per
series), appends a steady SDK collect as one row, and computes windows of series that
are clean throughout from two rows at once. Here random sequences of SDK collects (with
series missing, reordered, split over two scopes, reset, NaN, rewritten at the same time,
sent out of order), synthetic points, stale markers and pruning are applied both to a
``MetricHistory`` and to a reference: a :class:`Series` per series (Prometheus' model:
each series its own points) with the straightforward formulas over all points
(``extrapolated_change``, ``bucket_rates``, ``quantile_sorted``). Stored points and every
query must be equal, to the last bit.
"""

from __future__ import annotations

import math
import os
import random
import threading
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_botmon import conventions as conv
from otel_botmon.query import Labels, MetricHistory, MetricKind, Sample, compile_condition
from otel_botmon.query._series import Series
from tests.unit.expr._reference import bucket_rates, extrapolated_change
from tests.unit.expr._reference import quantile as quantile_sorted

COUNTER = conv.EXCHANGE_REQUESTS.name
GAUGE = conv.EXCHANGE_RATELIMIT_USED.name
HIST = conv.EXCHANGE_REQUEST_DURATION.name
KINDS = {COUNTER: MetricKind.COUNTER, GAUGE: MetricKind.GAUGE, HIST: MetricKind.HISTOGRAM}
BOUNDS = (0.1, 0.5, 1.0)
OTHER_BOUNDS = (0.2, 2.0)
MAX_AGE = 100.0
LOOKBACK = 300.0


class Reference:
    """One Series per (metric, labels), fed exactly as Prometheus would store them."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, Labels], Series] = {}
        self.last_prune: float | None = None
        self.collected: set[str] = set()  # metrics that came from the SDK

    def append(self, name: str, labels: Labels, at: float, value: Any) -> None:
        series = self.series.get((name, labels))
        if series is None:
            series = self.series[(name, labels)] = Series(100_000)
        series.append(at, value)

    def collect(self, reported: dict[str, list[tuple[Labels, Any]]], at: float) -> None:
        self.collected.update(reported)
        for name in self.collected:  # metrics missing from this collect included
            points = reported.get(name, [])
            present = {labels for labels, _ in points}
            for labels, value in points:
                self.append(name, labels, at, value)
            for (metric, labels), series in self.series.items():
                if (metric == name and labels not in present
                        and series.last_value is not None):
                    series.append(at, None)  # no longer reported: a stale marker
        if self.last_prune is None or at - self.last_prune >= MAX_AGE / 10:
            self.prune(at)

    def prune(self, now: float) -> None:
        self.last_prune = now
        for key in list(self.series):
            self.series[key].prune(now - MAX_AGE)
            if not self.series[key].times:
                del self.series[key]
        # a metric left without series is forgotten, as MetricHistory drops it: one that
        # a collect reported without points and that is written by add_point later is no
        # longer the SDK's (not marked stale when a collect lacks it)
        self.collected &= {name for name, _ in self.series}

    def of(self, name: str) -> dict[Labels, Series]:
        return {labels: s for (metric, labels), s in self.series.items() if metric == name}


def _histogram_value(counts: list[float], bounds: tuple[float, ...]) -> Any:
    """(bounds with inf, cumulative counts, sum, count) as the history stores them."""
    return ((*bounds, math.inf), tuple(accumulate(counts)), sum(counts) / 2, float(sum(counts)))


def _metrics_data(metrics: list[list[Metric]]) -> MetricsData:
    scopes = [
        ScopeMetrics(scope=InstrumentationScope(f"scope{i}"), metrics=ms, schema_url="")
        for i, ms in enumerate(metrics)
    ]
    return MetricsData(resource_metrics=[
        ResourceMetrics(resource=Resource.create({}), scope_metrics=scopes, schema_url="")
    ])


class World:
    """The series of three metrics and their evolving values, driven by a seed."""

    def __init__(self, rng: random.Random, width: int) -> None:
        self.rng = rng
        # the SDK hands the same attribute objects every collect
        self.attrs = {name: [{"i": str(k)} for k in range(width)] for name in KINDS}
        self.counters = [0.0] * width
        self.buckets = [[0.0] * (len(BOUNDS) + 1) for _ in range(width)]
        self.layout = [BOUNDS] * width
        self.bounds_objects = {BOUNDS: BOUNDS, OTHER_BOUNDS: OTHER_BOUNDS}

    def _counter_value(self, k: int) -> float:
        event = self.rng.randrange(40)
        if event == 0:
            self.counters[k] = 0.0  # a reset
        elif event == 1:
            return math.nan
        elif event == 2:
            return math.inf
        else:
            self.counters[k] += self.rng.randrange(0, 50)
        return self.counters[k]

    def _histogram_counts(self, k: int) -> tuple[list[float], tuple[float, ...]]:
        event = self.rng.randrange(30)
        if event == 0:
            self.buckets[k] = [0.0] * len(self.buckets[k])  # a restart
        elif event == 1:  # a new bucket layout
            self.layout[k] = OTHER_BOUNDS if self.layout[k] is BOUNDS else BOUNDS
            self.buckets[k] = [0.0] * (len(self.layout[k]) + 1)
        elif event == 2 and self.buckets[k][0] > 0:  # one bucket goes down, the count up
            self.buckets[k][0] -= 1
            self.buckets[k][-1] += 2
        else:
            self.buckets[k] = [c + self.rng.randrange(0, 6) for c in self.buckets[k]]
        return list(self.buckets[k]), self.layout[k]

    def collect(self) -> tuple[MetricsData, dict[str, list[tuple[Labels, Any]]]]:
        rng = self.rng
        reported: dict[str, list[tuple[Labels, Any]]] = {}
        scopes: list[list[Metric]] = [[], []]
        for name in KINDS:
            if rng.randrange(25) == 0:
                continue  # the whole metric is missing from this collect
            order = list(range(len(self.attrs[name])))
            if rng.randrange(8) == 0:
                rng.shuffle(order)
            chosen = [k for k in order if rng.randrange(8) != 0]
            points: list[Any] = []
            stored: list[tuple[Labels, Any]] = []
            for k in chosen:
                attrs = self.attrs[name][k]
                if name == HIST:
                    counts, bounds = self._histogram_counts(k)
                    points.append(HistogramDataPoint(
                        attributes=attrs, start_time_unix_nano=0, time_unix_nano=1,
                        count=int(sum(counts)), sum=sum(counts) / 2,
                        bucket_counts=[int(c) for c in counts],
                        explicit_bounds=self.bounds_objects[bounds], min=0, max=0,
                    ))
                    stored.append((Labels(attrs), _histogram_value(counts, bounds)))
                    continue
                value = (self._counter_value(k) if name == COUNTER
                         else rng.choice([rng.uniform(0, 100), rng.uniform(0, 100), math.nan]))
                points.append(NumberDataPoint(attributes=attrs, start_time_unix_nano=0,
                                              time_unix_nano=1, value=value))
                stored.append((Labels(attrs), value))
            reported[name] = stored
            split = rng.randrange(len(points) + 1) if rng.randrange(6) == 0 else len(points)
            for scope, part in ((0, points[:split]), (1, points[split:])):
                if not part and scope == 1:
                    continue
                data: Any
                if name == HIST:
                    data = Histogram(data_points=part,
                                     aggregation_temporality=AggregationTemporality.CUMULATIVE)
                elif name == COUNTER:
                    data = Sum(data_points=part, is_monotonic=True,
                               aggregation_temporality=AggregationTemporality.CUMULATIVE)
                else:
                    data = Gauge(data_points=part)
                scopes[scope].append(Metric(name=name, description="", unit="", data=data))
        return _metrics_data(scopes), reported


def _run(seed: int, width: int, steps: int) -> tuple[MetricHistory, Reference, float]:
    rng = random.Random(seed)
    world = World(rng, width)
    history = MetricHistory(max_age_s=MAX_AGE)
    reference = Reference()
    t = 1000.0
    newest = t
    for _ in range(steps):
        t += rng.choice([10.0, 10.0, 10.0, 10.0, 5.0, 15.0, 0.5, 0.0, -5.0])
        newest = max(newest, t)
        op = rng.randrange(20)
        if op == 0:  # a synthetic point
            k = rng.randrange(width)
            labels = Labels({"i": str(k)})
            value = float(rng.randrange(0, 500))
            history.add_point(COUNTER, labels, value, t, kind=MetricKind.COUNTER)
            reference.append(COUNTER, labels, t, value)
        elif op == 1:  # a stale marker for one series
            name = rng.choice(list(KINDS))
            labels = Labels({"i": str(rng.randrange(width))})
            history.mark_stale(name, labels, t)
            if (name, labels) in reference.series:
                reference.append(name, labels, t, None)
        elif op == 2:
            history.prune(t)
            reference.prune(t)
        elif op in (3, 4):  # several synthetic writes as one batch (recording rules)
            at = t
            with history.batch():
                for _ in range(rng.randrange(1, 2 * width + 2)):
                    labels = Labels({"i": str(rng.randrange(width))})
                    if rng.randrange(6) == 0:
                        history.mark_stale(GAUGE, labels, at)
                        if (GAUGE, labels) in reference.series:
                            reference.append(GAUGE, labels, at, None)
                    else:
                        value = rng.choice([rng.uniform(0, 100), math.nan])
                        history.add_point(GAUGE, labels, value, at)
                        reference.append(GAUGE, labels, at, value)
                    if rng.randrange(5) == 0:  # a batch may go on at a later time
                        at += rng.choice([10.0, 0.5])
            t = at
            newest = max(newest, t)
        else:
            data, reported = world.collect()
            history.ingest(data, t)
            reference.collect(reported, t)
    return history, reference, newest


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _assert_same_vectors(got: dict[str, float], want: dict[str, float], what: str) -> None:
    assert got.keys() == want.keys(), what
    assert all(_same(got[k], want[k]) for k in got), (what, got, want)


def _got(condition: str, history: MetricHistory, now: float) -> dict[str, float]:
    return {s.labels["i"]: s.value
            for s in compile_condition(condition).values(history, now)}


def _check_queries(history: MetricHistory, reference: Reference, now: float) -> None:
    for window, range_s in (("30s", 30.0), ("1m", 60.0), ("5m", 300.0)):
        start = now - range_s
        for func in ("rate", "increase"):
            for name, text in ((COUNTER, COUNTER), (HIST, f"{HIST}.count")):
                want = {}
                for labels, series in reference.of(name).items():
                    points = series.window(start, now)
                    if name == HIST:
                        points = [(t, p[3]) for t, p in points]
                    value = extrapolated_change(points, start, now, counter=True,
                                                per_second=func == "rate")
                    if value is not None:
                        want[labels["i"]] = value
                _assert_same_vectors(_got(f"{func}({text}[{window}])", history, now), want,
                                     f"{func}({text}[{window}]) at {now}")
        want = {}
        for labels, series in reference.of(GAUGE).items():
            value = extrapolated_change(series.window(start, now), start, now,
                                        counter=False, per_second=False)
            if value is not None:
                want[labels["i"]] = value
        _assert_same_vectors(_got(f"delta({GAUGE}[{window}])", history, now), want, "delta")
        want = {labels["i"]: max(v for _, v in points)
                for labels, s in reference.of(GAUGE).items()
                if (points := s.window(start, now))}
        got = _got(f"max({GAUGE}[{window}])", history, now)
        assert got.keys() == want.keys()
        want = {}
        for labels, series in reference.of(HIST).items():
            points = series.window(start, now)
            rates = bucket_rates(points, start, now) if len(points) >= 2 else None
            if rates is not None:
                want[labels["i"]] = quantile_sorted(0.95, *rates)
        _assert_same_vectors(_got(f"p95({HIST}[{window}])", history, now), want, "p95")
    for name, text in ((COUNTER, COUNTER), (GAUGE, GAUGE), (HIST, f"{HIST}.sum")):
        want = {}
        for labels, series in reference.of(name).items():
            value = series.latest(now, LOOKBACK)
            if value is not None:
                want[labels["i"]] = value[2] if name == HIST else value
        _assert_same_vectors(_got(text, history, now), want, f"{text} at {now}")


def _check_storage(history: MetricHistory, reference: Reference) -> None:
    for name in KINDS:
        got = {labels: (list(s.times), list(s.values)) for labels, s in history.select(name)}
        want = {labels: (list(s.times), list(s.values)) for labels, s in reference.of(name).items()}
        assert got.keys() == want.keys(), name
        for labels in got:
            times, values = got[labels]
            assert times == want[labels][0], (name, labels)
            assert all(_same(a, b) for a, b in zip(values, want[labels][1], strict=True)), (
                name, labels, values, want[labels][1])
    assert history.series_count() == len(reference.series)


@settings(max_examples=250, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 5), st.integers(1, 40),
       st.sampled_from([0.0, 0.0, 2.5, 40.0, -25.0, 400.0]))
def test_columns_equal_one_series_per_ring_buffer(
    seed: int, width: int, steps: int, after: float,
) -> None:
    history, reference, newest = _run(seed, width, steps)
    _check_storage(history, reference)
    _check_queries(history, reference, newest + after)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 4))
def test_queries_stay_equal_cycle_after_cycle(seed: int, width: int) -> None:
    """Queries between writes (the evaluator's pattern) see what the reference sees."""
    rng = random.Random(seed)
    world = World(rng, width)
    history = MetricHistory(max_age_s=MAX_AGE)
    reference = Reference()
    t = 0.0
    for _ in range(30):
        t += rng.choice([10.0, 10.0, 10.0, 0.0, 5.0])
        data, reported = world.collect()
        history.ingest(data, t)
        reference.collect(reported, t)
        _check_queries(history, reference, t)


def test_a_batch_at_one_time_keeps_every_clean_run_without_recomputing() -> None:
    """Points of one time written in ``batch()`` (as recording rules write their samples)
    share a row closed once, like a collect: no column is left to recompute from all its
    rows. One at a time, each write ends the row, so every later series of that time is
    recomputed before the next query (what the batch avoids); both read the same."""
    batched, single = MetricHistory(), MetricHistory()
    for step in range(6):
        with batched.batch():
            for k in range(10):
                batched.add_point(GAUGE, {"i": str(k)}, float(step * k % 7), 10.0 * step)
        for k in range(10):
            single.add_point(GAUGE, {"i": str(k)}, float(step * k % 7), 10.0 * step)
    family = batched._families[GAUGE]
    assert not family.dirty and not family.broken
    assert len(single._families[GAUGE].dirty) == 9
    for condition in (f"max({GAUGE}[1m])", f"delta({GAUGE}[1m])", GAUGE):
        assert _got(condition, batched, 50.0) == _got(condition, single, 50.0)


def _uneven_writes(history: MetricHistory) -> None:
    """Writes after which a row left open (a gap not recorded) breaks ``delta``."""
    history.add_point(GAUGE, {"i": "0"}, 0.0, 100.0)
    history.add_point(GAUGE, {"i": "0"}, 10.0, 110.0)
    history.add_point(GAUGE, {"i": "1"}, 20.0, 120.0)


def test_a_fork_inside_a_batch_leaves_the_child_a_history_it_can_read() -> None:
    """os.fork() while a batch is open (the alert cycle's thread records while another
    thread forks): the child ends the batch's rows, and its own writes end theirs."""
    from tests.forking import guard_child, wait_child

    history, plain = MetricHistory(), MetricHistory()
    _uneven_writes(plain)
    with history.batch():
        history.add_point(GAUGE, {"i": "0"}, 1.0, 50.0)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's result is its exit status
            guard_child(20)
            try:
                _uneven_writes(history)
                ok = (_got(f"delta({GAUGE}[1m])", history, 120.0)
                      == _got(f"delta({GAUGE}[1m])", plain, 120.0))
                os._exit(0 if ok else 1)
            except BaseException:
                os._exit(2)
    assert os.waitstatus_to_exitcode(wait_child(pid, 20.0)) == 0


def test_another_threads_writes_during_a_batch_end_their_rows() -> None:
    history, plain = MetricHistory(), MetricHistory()
    _uneven_writes(plain)
    with history.batch():
        worker = threading.Thread(target=_uneven_writes, args=(history,))
        worker.start()
        worker.join()
        assert (_got(f"delta({GAUGE}[1m])", history, 120.0)
                == _got(f"delta({GAUGE}[1m])", plain, 120.0))


def test_a_steady_collect_is_one_row_and_reads_the_same() -> None:
    """SDK streams reported in the same order every collect take the whole-row path; its
    results are the reference's (this is the evaluator's everyday case)."""
    rng = random.Random(7)
    world = World(rng, 50)
    history = MetricHistory(max_age_s=MAX_AGE)
    reference = Reference()
    attrs = world.attrs[COUNTER]
    for step in range(40):
        values = [float(step * 3 + k) for k in range(len(attrs))]
        points = [NumberDataPoint(attributes=a, start_time_unix_nano=0, time_unix_nano=1,
                                  value=v) for a, v in zip(attrs, values, strict=True)]
        data = _metrics_data([[Metric(name=COUNTER, description="", unit="", data=Sum(
            data_points=points, is_monotonic=True,
            aggregation_temporality=AggregationTemporality.CUMULATIVE))]])
        history.ingest(data, 10.0 * step)
        reference.collect({COUNTER: [(Labels(a), v) for a, v in
                                     zip(attrs, values, strict=True)]}, 10.0 * step)
    _check_storage(history, reference)
    _check_queries(history, reference, 390.0)


def test_series_that_vanish_are_dropped_and_the_rest_read_the_same() -> None:
    """A series gone for longer than max_age is removed (its column too); the others
    keep their points and read as before, and new series take fresh columns."""
    history = MetricHistory(max_age_s=MAX_AGE)
    reference = Reference()
    attrs = [{"i": str(k)} for k in range(4)]
    level = 0.0
    for step in range(60):
        t = 10.0 * step
        level += 3.0
        alive = attrs if step < 5 else [attrs[0], attrs[2]] if step < 40 else attrs[1:]
        points = [NumberDataPoint(attributes=a, start_time_unix_nano=0, time_unix_nano=1,
                                  value=level + int(a["i"])) for a in alive]
        data = _metrics_data([[Metric(name=COUNTER, description="", unit="", data=Sum(
            data_points=points, is_monotonic=True,
            aggregation_temporality=AggregationTemporality.CUMULATIVE))]])
        history.ingest(data, t)
        reference.collect({COUNTER: [(Labels(a), level + int(a["i"])) for a in alive]}, t)
        if step in (20, 45, 59):
            _check_storage(history, reference)
            _check_queries(history, reference, t)
    # 0 stopped at step 40 and is gone; 1 and 3 were gone and came back
    assert {labels["i"] for labels, _ in history.select(COUNTER)} == {"1", "2", "3"}
    assert history.series_count() == len(reference.series)


def test_columns_added_later_survive_the_removal_of_older_ones() -> None:
    """Rows written before a series existed are narrower; removing another series
    renumbers the columns of every row without mixing series up."""
    history = MetricHistory(max_age_s=MAX_AGE)
    reference = Reference()
    attrs = {name: {"s": name} for name in ("a", "b", "c")}
    for step in range(13):
        t = 10.0 * step
        alive = ["a"] + (["c"] if step < 2 else []) + (["b"] if step >= 5 else [])
        points = [NumberDataPoint(attributes=attrs[n], start_time_unix_nano=0,
                                  time_unix_nano=1, value=float(step * 2 + ord(n)))
                  for n in alive]
        data = _metrics_data([[Metric(name=GAUGE, description="", unit="",
                                      data=Gauge(data_points=points))]])
        history.ingest(data, t)
        reference.collect({GAUGE: [(Labels(attrs[n]), float(step * 2 + ord(n)))
                                   for n in alive]}, t)
    # "c" (stale marker at 20 s) is dropped; the rows at 30 and 40 s predate "b"
    history.prune(130.0)
    reference.prune(130.0)
    _check_storage(history, reference)
    got = {s.labels["s"]: s.value for s in compile_condition(GAUGE).values(history, 120.0)}
    assert got == {"a": 24.0 + ord("a"), "b": 24.0 + ord("b")}
    assert history.latest(GAUGE, 120.0) == [Sample(Labels(attrs[n]), 24.0 + ord(n)) for n in "ab"]


def test_a_point_between_two_collects_keeps_every_series_in_place() -> None:
    """A synthetic point at a new time between stored rows inserts a row: series whose
    values span it get a gap there, later ones keep their points and clean runs."""
    history = MetricHistory(max_age_s=1e6)
    reference = Reference()
    attrs = {name: {"i": name} for name in ("a", "b")}
    for step, alive in enumerate((["a"], ["a"], ["a", "b"], ["a", "b"], ["a", "b"])):
        t = 10.0 * (step + 1)
        values = {n: float(step * 5 + len(n)) for n in alive}
        points = [NumberDataPoint(attributes=attrs[n], start_time_unix_nano=0,
                                  time_unix_nano=1, value=values[n]) for n in alive]
        data = _metrics_data([[Metric(name=COUNTER, description="", unit="", data=Sum(
            data_points=points, is_monotonic=True,
            aggregation_temporality=AggregationTemporality.CUMULATIVE))]])
        history.ingest(data, t)
        reference.collect({COUNTER: [(Labels(attrs[n]), values[n]) for n in alive]}, t)
    history.add_point(COUNTER, {"i": "c"}, 4.0, 25.0, kind=MetricKind.COUNTER)
    reference.append(COUNTER, Labels({"i": "c"}), 25.0, 4.0)
    _check_storage(history, reference)
    for now in (30.0, 45.0, 50.0, 60.0):
        _check_queries(history, reference, now)


def test_the_row_bound_holds_for_points_written_between_rows() -> None:
    """Points at earlier times (a clock that stepped back, new series) insert rows; the
    metric still keeps only its newest ``max_points_per_series`` collection times."""
    history = MetricHistory(max_age_s=1e6, max_points_per_series=3)
    history.add_point("m", {"s": "a"}, 1.0, 1000.0)
    for k in range(20):
        history.add_point("m", {"s": str(k)}, 1.0, 990.0 - k)
        history.add_point("m", {"s": "a"}, 2.0 + k, 1001.0 + k)
    times = {t for _, series in history.select("m") for t in series.times}
    assert times == {1018.0, 1019.0, 1020.0}
    [(_, series)] = history.select("m", where=lambda labels: labels["s"] == "a")
    assert list(series.values) == [19.0, 20.0, 21.0]


def test_a_rewrite_of_a_point_that_was_dropped_writes_nowhere_else() -> None:
    history = MetricHistory(max_age_s=1e6, max_points_per_series=3)
    history.add_point("m", {"s": "b"}, 100.0, 10.0, kind=MetricKind.COUNTER)
    for t in (20.0, 30.0, 40.0):  # the row at 10 s goes
        history.add_point("m", {"s": "a"}, t, t, kind=MetricKind.COUNTER)
    history.add_point("m", {"s": "b"}, 7.0, 10.0, kind=MetricKind.COUNTER)  # at 10 s again
    assert {labels["s"] for labels, _ in history.select("m")} == {"a"}
    assert [s.labels["s"] for s in history.latest("m", 20.0)] == ["a"]


def test_a_histogram_sum_that_goes_down_reads_as_a_reset_on_every_path() -> None:
    """rate/increase of ``h.sum`` treat a decrease as a counter reset, as Prometheus does
    with ``h_sum``; the two-row path must not skip it."""
    history = MetricHistory(max_age_s=1e6)
    reference = Series(100)
    for i, (t, total) in enumerate([(10.0, 5.0), (20.0, -10.0), (30.0, -20.0)]):
        history.add_histogram_point(HIST, {"i": "0"}, [1.0], [i + 1, 0], total, i + 1, t)
        reference.append(t, total)
    got = _got(f"increase({HIST}.sum[30s])", history, 30.0)
    want = extrapolated_change(reference.window(0.0, 30.0), 0.0, 30.0, counter=True,
                               per_second=False)
    assert got == {"0": want}


def test_a_collect_that_fails_halfway_leaves_a_consistent_history() -> None:
    """A point whose value is not a number stops that ingest (the evaluator reports it
    and goes on); what was written stays readable and nothing claims the missing value."""
    history = MetricHistory()
    a, b = {"i": "a"}, {"i": "b"}

    def collect(*points: tuple[dict[str, str], Any]) -> MetricsData:
        data_points = [NumberDataPoint(attributes=attrs, start_time_unix_nano=0,
                                       time_unix_nano=1, value=value)
                       for attrs, value in points]
        return _metrics_data([[Metric(name=GAUGE, description="", unit="",
                                      data=Gauge(data_points=data_points))]])

    history.ingest(collect((a, 1.0), (b, 2.0)), 10.0)
    history.ingest(collect((a, 1.5), (b, 2.5)), 20.0)
    try:
        history.ingest(collect((b, 5.0), (a, "not a number")), 30.0)
    except (TypeError, ValueError):
        pass
    got = {s.labels["i"]: s.value for s in history.latest(GAUGE, 30.0)}
    assert got == {"a": 1.5, "b": 5.0}
    want = {
        name: extrapolated_change(points, 10.0, 30.0, counter=False, per_second=False)
        for name, points in (("a", [(10.0, 1.0), (20.0, 1.5)]),
                             ("b", [(10.0, 2.0), (20.0, 2.5), (30.0, 5.0)]))
    }
    assert _got(f"delta({GAUGE}[20s])", history, 30.0) == want


def test_a_name_reported_with_two_types_keeps_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two instruments of one name but different types (from two meters) in the same
    collect: the first is kept cycle after cycle, with one warning."""
    history = MetricHistory()
    attrs = {"i": "a"}
    for step, value in enumerate((1.0, 2.0, 3.0)):
        gauge = Gauge(data_points=[NumberDataPoint(
            attributes=attrs, start_time_unix_nano=0, time_unix_nano=1, value=value)])
        counter = Sum(data_points=[NumberDataPoint(
            attributes=attrs, start_time_unix_nano=0, time_unix_nano=1, value=100.0)],
            is_monotonic=True, aggregation_temporality=AggregationTemporality.CUMULATIVE)
        history.ingest(_metrics_data([
            [Metric(name=GAUGE, description="", unit="", data=gauge)],
            [Metric(name=GAUGE, description="", unit="", data=counter)],
        ]), 10.0 * (step + 1))
    [(_, series)] = history.select(GAUGE)
    assert list(series.values) == [1.0, 2.0, 3.0]
    assert history.kind(GAUGE) is MetricKind.GAUGE
    warnings = [r for r in caplog.records if "reported twice" in r.getMessage()]
    assert len(warnings) == 1 and GAUGE in warnings[0].getMessage()
