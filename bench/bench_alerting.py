"""Alert evaluation cost against the SDK's own collect, measured in the same run.

Every figure is a ratio per round (``bench/_harness.py``: interleaved rounds, median,
IQR, mean, load average, ``--repeat N``, one ``BENCH {json}`` line per figure). A round
is one evaluation cycle: the shards' series are touched, the SDK's InMemoryMetricReader
is collected (the baseline), and the history ingest + rule evaluation + alert lifecycle
run on that collect (the candidate).

Workload per 1x: 4,000 series, each touched every cycle (so 4,000 data points per
collect): exchange request latency histograms (``--histogram-share``, default 10 %, as
in a bot where only durations are histograms); up to 1,000 series (the SDK's per-stream
limit) each of the exchange request counter, the trade counter and the rate-limit gauge;
the rest on the trade volume counter, which no rule reads (so it is not ingested, as in
AlertManager). Cycles are 10 s apart (simulated); the first ones only fill the windows.
10x is ten such shards.

Rule workloads (each figure names its own):
  distinct  the 12 default rules + 88 rules as users write them, each its own window or
            matcher (rate/increase/p95/max_over_time/avg/sum by over its own selector),
            so no per-cycle memo answers one rule from another;
  shaped    the 12 default rules + 88 rules of six shapes that differ only in their
            threshold (a per-cycle memo answers most of them from the first).

Figures and targets (issue 15):
  alerting.distinct.1x       evaluation / collect, distinct rules at 1x      <= 1.0
  alerting.shaped.1x         evaluation / collect, shaped rules at 1x        <= 0.5
  alerting.distinct.10x/1x   evaluation at 10x / evaluation at 1x, the two
                             cycles interleaved in each round, each from a
                             collected heap (the collect's data freed before
                             the rules run, as AlertManager does)            <= 12
  alerting.distinct.10x/1x.collector_as_in_a_bot
                             the same with each size in its own process and
                             the collector as in a bot (full collections set
                             off by the SDK's collect, amortised)    information
  alerting.history.bytes     history bytes per stored value after 1 h of 10 s
                             collects of one shard, with busy histograms
                             (bucket counts in the thousands: no cached small
                             ints), measured with tracemalloc                <= 20 B

Run: python bench/bench_alerting.py [--repeat N] [--rounds N] [--quick]
                                    [--only distinct] [--histogram-share 0.25]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Bench

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.alerting.default_rules import default_rules
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule, AlertSeverity
from otel_botmon.query import MetricHistory

STEP_S = 10.0

_FULL_COLLECTIONS = [0]  # full garbage collections seen, from gc.callbacks


def _count_full_collections(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info["generation"] == 2:
        _FULL_COLLECTIONS[0] += 1


gc.callbacks.append(_count_full_collections)


def rules_100() -> list[AlertRule]:
    """The default rules plus per-series rules in the shapes users write."""
    rules = default_rules(disk_warning=85, disk_critical=95,
                          api_response_time_warning_ms=1000, api_response_time_critical_ms=5000)
    shapes: list[Callable[[int], str]] = [
        lambda i: f"rate({conv.EXCHANGE_REQUESTS.name}[1m]) > {1000 + i}",
        lambda i: f"p95({conv.EXCHANGE_REQUEST_DURATION.name}[5m]) > {2 + i / 10:g}s",
        lambda i: f"increase({conv.TRADES.name}{{trading.outcome=\"error\"}}[5m]) > {50 + i}",
        lambda i: f"{conv.EXCHANGE_RATELIMIT_USED.name} > {985 + i % 10}",
        lambda i: f"avg({conv.EXCHANGE_RATELIMIT_USED.name}) > {900 + i}",
        lambda i: f"win_rate < {i % 10}",
    ]
    i = 0
    while len(rules) < 100:
        rules.append(AlertRule(
            name=f"bench_rule_{i}", condition=shapes[i % len(shapes)](i),
            severity=AlertSeverity.WARNING, for_=60,
        ))
        i += 1
    return rules


def rules_distinct() -> list[AlertRule]:
    """The default rules plus 88 rules as users write them: each its own window or
    matcher, so no two share a computation (no per-cycle memo answers one from another)."""
    rules = default_rules(disk_warning=85, disk_critical=95,
                          api_response_time_warning_ms=1000, api_response_time_critical_ms=5000)
    req, lat = conv.EXCHANGE_REQUESTS.name, conv.EXCHANGE_REQUEST_DURATION.name
    trades, limit = conv.TRADES.name, conv.EXCHANGE_RATELIMIT_USED.name
    ex, sym = conv.EXCHANGE_NAME, conv.TRADING_SYMBOL
    shapes: list[Callable[[int], str]] = [
        lambda i: f'rate({req}{{{ex}="ex{i % 20}"}}[{60 + i}s]) > {1000 + i}',
        lambda i: f'p95({lat}{{{ex}="ex{i % 20}"}}[{240 + i}s]) > {2 + i / 10:g}s',
        lambda i: f'increase({trades}{{{sym}="SYM{i}"}}[{300 + i}s]) > {50 + i}',
        lambda i: f'{limit}{{{ex}=~"ex{i}.*"}} > {985 + i % 10}',
        lambda i: f'avg({limit}{{{ex}!="ex{i}"}}) > {900 + i}',
        lambda i: f'max({limit}{{{ex}="ex{i}"}}[{120 + i}s]) > {990 + i % 10}',
        lambda i: f'sum by ({ex}) (rate({req}{{{ex}=~"ex{i % 7}.*"}}[{90 + i}s])) > {5000 + i}',
        lambda i: f'increase({trades}{{trading.outcome="error"}}[{600 + i}s]) > {50 + i}',
    ]
    i = 0
    while len(rules) < 100:
        rules.append(AlertRule(
            name=f"bench_rule_{i}", condition=shapes[i % len(shapes)](i),
            severity=AlertSeverity.WARNING, for_=60,
        ))
        i += 1
    return rules


WORKLOADS: dict[str, Callable[[], list[AlertRule]]] = {
    "shaped": rules_100, "distinct": rules_distinct,
}

SERIES_PER_SHARD = 4000
PER_STREAM = conv.CARDINALITY_LIMIT  # the SDK's series limit per metric stream


class Shard:
    """4,000 series over five metrics: 4,000 data points per collect.

    Shards are separate meters (instrumentation scopes), so ten of them stay under the
    SDK's per-stream cardinality limit; a ``bench.shard`` attribute keeps their series apart.
    """

    def __init__(self, tel: telemetry.Telemetry, index: int, histogram_share: float) -> None:
        histograms = min(PER_STREAM, round(SERIES_PER_SHARD * histogram_share))
        rest = SERIES_PER_SHARD - histograms
        requests, trades, limits = (min(PER_STREAM, rest // 3),) * 3
        volumes = rest - requests - trades - limits
        meter = tel.meter_provider.get_meter(f"bench.shard{index}")
        self.rng = random.Random(index)
        self.requests = meter.create_counter(conv.EXCHANGE_REQUESTS.name)
        self.duration = meter.create_histogram(
            conv.EXCHANGE_REQUEST_DURATION.name, unit="s",
            explicit_bucket_boundaries_advisory=list(conv.DURATION_BUCKETS_S),
        )
        self.trades = meter.create_counter(conv.TRADES.name)
        self.volume = meter.create_counter(conv.TRADE_VOLUME.name)
        self.ratelimit = meter.create_gauge(conv.EXCHANGE_RATELIMIT_USED.name)
        shard = {"bench.shard": index}

        def exchange(n: int) -> dict[str, Any]:
            return {**shard, conv.EXCHANGE_NAME: f"ex{n % 20}",
                    conv.EXCHANGE_ENDPOINT: f"ep{n // 20}", conv.HTTP_RESPONSE_STATUS_CODE: 200}

        self.attrs = [exchange(n) for n in range(requests)]
        self.latency_attrs = [exchange(n) for n in range(histograms)]
        self.trade_attrs = [
            {**shard, conv.TRADING_SYMBOL: f"SYM{n // 4}", conv.TRADING_SIDE: "BUY",
             conv.TRADING_ORDER_TYPE: "MARKET",
             conv.TRADING_OUTCOME: ("filled", "partial", "rejected", "error")[n % 4]}
            for n in range(trades)
        ]
        self.volume_attrs = [
            {**shard, conv.TRADING_SYMBOL: f"SYM{n // 2}",
             conv.TRADING_SIDE: ("BUY", "SELL")[n % 2]}
            for n in range(volumes)
        ]
        self.limit_attrs = [
            {**shard, conv.EXCHANGE_NAME: f"ex{n}", conv.RATELIMIT_INTERVAL: "1m"}
            for n in range(limits)
        ]
        # rate-limit usage drifts slowly around a per-series level, so a steady ~1 % of
        # the series is above each gauge rule's threshold and its alerts go on firing
        self.limit_base = [self.rng.random() * 1000 for _ in self.limit_attrs]

    def tick(self) -> None:
        """Touch every series once (so each yields a data point every collect)."""
        rng = self.rng.random
        for attrs in self.attrs:
            self.requests.add(1 + int(rng() * 3), attrs)
        for attrs in self.latency_attrs:
            self.duration.record(rng() * 0.5, attrs)
        for attrs in self.trade_attrs:
            self.trades.add(1, attrs)
        for attrs in self.volume_attrs:
            self.volume.add(rng(), attrs)
        for attrs, base in zip(self.limit_attrs, self.limit_base, strict=True):
            self.ratelimit.set(base + rng() * 0.5, attrs)


def count_points(data: Any) -> int:
    return sum(
        len(metric.data.data_points)
        for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )


class Setup:
    """One SDK with ``scale`` shards, a history and an evaluator of ``workload``'s rules;
    :meth:`cycle` runs one 10 s cycle and returns (collect s, evaluation s)."""

    def __init__(self, scale: int, workload: str, histogram_share: float,
                 *, collect_first: bool = True) -> None:
        self.collect_first = collect_first
        self.tel = telemetry.configure(f"bench-alerting-{workload}-{scale}x", set_global=False)
        self.shards = [Shard(self.tel, index, histogram_share) for index in range(scale)]
        self.history = MetricHistory()
        self.evaluator = AlertEvaluator(WORKLOADS[workload](), self.history)
        self.only = self.evaluator.referenced_metrics()
        self.now = 1_700_000_000.0
        self.points = 0
        self.times: dict[str, list[float]] = {"collect": [], "ingest": [], "evaluate": []}
        self.full_collections = 0  # full (generation 2) collections inside timed cycles

    def cycle(self) -> tuple[float, float]:
        for shard in self.shards:
            shard.tick()
        self.now += STEP_S
        if self.collect_first and gc.isenabled():
            gc.collect()  # outside the timed part: each cycle starts from a collected heap
        full = _FULL_COLLECTIONS[0]
        start = time.perf_counter()
        data = self.tel.metric_reader.get_metrics_data()
        collected = time.perf_counter()
        self.history.ingest(data, self.now, only=self.only)
        ingested = time.perf_counter()
        self.points = count_points(data)
        # as AlertManager does: the collect's data is freed before the rules run
        del data
        evaluating = time.perf_counter()
        self.evaluator.evaluate(self.now)
        done = time.perf_counter()
        self.full_collections += _FULL_COLLECTIONS[0] - full
        for key, value in (("collect", collected - start), ("ingest", ingested - collected),
                           ("evaluate", done - evaluating)):
            self.times[key].append(value)
        return collected - start, (ingested - collected) + (done - evaluating)

    def warm(self, cycles: int = 72) -> None:
        """Run until the history covers the longest window (the distinct rules' reach
        690 s): the steady state of a bot that has run for a while, where no counter is
        younger than the windows that read it."""
        for _ in range(cycles):
            self.cycle()
        for values in self.times.values():
            values.clear()
        self.full_collections = 0

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"{k}_ms": round(statistics.median(v) * 1e3, 2)
                               for k, v in self.times.items() if v}
        out.update(points=self.points, series=self.history.series_count(),
                   full_gc_in_cycles=self.full_collections,
                   rules=len(self.evaluator.rules), firing=len(self.evaluator.firing()))
        return out

    def close(self) -> None:
        self.tel.shutdown()


def evaluation_over_collect(bench: Bench, workload: str, target: float, share: float) -> None:
    name = f"alerting.{workload}.1x"
    if not bench.wanted(name):
        return
    setup = Setup(1, workload, share)
    try:
        def one_round() -> float:
            collect, evaluation = setup.cycle()
            return evaluation / collect

        bench.rounds(
            name, one_round, target=target, rounds=21, warmup=setup.warm, detail=setup.detail,
            workload=f"{workload} rules (100) over 4,000 series at 1x: history ingest + rule "
                     "evaluation + lifecycle / InMemoryMetricReader collect, one cycle a round",
        )
    finally:
        setup.close()


SCALING_CYCLES = 6  # cycles of each size per round (a minute of the bot's time)


def scaling_worker(scale: int, share: float) -> int:
    """One size of ``alerting.distinct.10x/1x`` in its own process: answers each line
    ``N`` on stdin with the JSON of N cycles (evaluation seconds, full collections)."""
    logging.disable(logging.CRITICAL)
    setup = Setup(scale, "distinct", share, collect_first=False)
    setup.warm()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cycles = int(line)
        if cycles == 0:
            print(json.dumps(setup.detail()), flush=True)
            continue
        full = setup.full_collections
        seconds = sum(setup.cycle()[1] for _ in range(cycles))
        print(json.dumps({"seconds": seconds, "full_gc": setup.full_collections - full}),
              flush=True)
    setup.close()
    return 0


class ScalingSide:
    """The parent's handle on one :func:`scaling_worker` process."""

    def __init__(self, scale: int, share: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--scaling-worker", str(scale), str(share)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.full_gc = self.cycles = 0  # full collections in the timed cycles

    def ask(self, cycles: int) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if cycles >= 0:
            self.proc.stdin.write(f"{cycles}\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"scaling worker exited with {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        if cycles > 0:
            self.cycles += cycles
            self.full_gc += answer["full_gc"]
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def scaling(bench: Bench, share: float) -> None:
    name = "alerting.distinct.10x/1x"
    if not bench.wanted(name):
        return
    small = Setup(1, "distinct", share)
    large = Setup(10, "distinct", share)
    flip = [False]
    try:
        def one_round() -> float:
            flip[0] = not flip[0]
            if flip[0]:
                a = large.cycle()[1]
                b = small.cycle()[1]
            else:
                b = small.cycle()[1]
                a = large.cycle()[1]
            return a / b

        def warm() -> None:
            small.warm()
            large.warm()

        bench.rounds(
            name, one_round, target=12.0, rounds=9, warmup=warm,
            detail=lambda: {"1x": small.detail(), "10x": large.detail()},
            workload="distinct rules (100): evaluation (ingest + rules + lifecycle) at 10x "
                     "(40,000 series) / at 1x (4,000 series), one cycle of each per round, "
                     "interleaved, each from a collected heap",
        )
    finally:
        small.close()
        large.close()


def scaling_with_collector(bench: Bench, share: float) -> None:
    """For information (no target): the same ratio with the collector as in a bot.

    Each size runs in its own process, so each has the heap, and so the garbage
    collector's rhythm, of a bot of that size (in one process the 1x side would live in
    the 10x side's heap, whose size sets when a full collection runs). No forced
    collections; a round sums ``SCALING_CYCLES`` cycles of each size, so full collections
    are amortised over the cycles that set them off. What sets them off is the SDK's
    collect (about two tracked objects per data point, alive until the ingest returns),
    not the evaluation (a few hundred a cycle); the detail counts them per cycle."""
    name = "alerting.distinct.10x/1x.collector_as_in_a_bot"
    if not bench.wanted(name):
        return
    small = ScalingSide(1, share)
    large = ScalingSide(10, share)
    flip = [False]
    try:
        def one_round() -> float:
            flip[0] = not flip[0]
            order = (large, small) if flip[0] else (small, large)
            seconds = {id(side): side.ask(SCALING_CYCLES)["seconds"] for side in order}
            return float(seconds[id(large)] / seconds[id(small)])

        def warm() -> None:
            small.ask(-1)  # each worker warms itself (72 cycles) and says when it is ready
            large.ask(-1)

        def detail() -> dict[str, Any]:
            return {"1x": small.ask(0), "10x": large.ask(0),
                    "full_gc_per_cycle": {
                        "1x": round(small.full_gc / max(1, small.cycles), 3),
                        "10x": round(large.full_gc / max(1, large.cycles), 3)}}

        bench.rounds(
            name, one_round, target=None, rounds=9, warmup=warm, detail=detail,
            workload=f"as alerting.distinct.10x/1x, but each size in its own process (its "
                     f"own heap), the collector running as in a bot (no forced collections); "
                     f"{SCALING_CYCLES} cycles of each per round, interleaved; for "
                     f"information, no target",
        )
    finally:
        small.close()
        large.close()


def busy_shard(shard: Shard, observations: int) -> None:
    """Record ``observations`` latencies into every histogram series first, so bucket
    counts are in the thousands (a busy bot), not the small ints Python caches."""
    rng = shard.rng.random
    for attrs in shard.latency_attrs:
        for _ in range(observations):
            shard.duration.record(rng() * 2.0, attrs)


def memory_round(cycles: int, histogram_share: float) -> Callable[[], float]:
    def one_round() -> float:
        import tracemalloc

        tel = telemetry.configure("bench-alerting-memory", set_global=False)
        try:
            shard = Shard(tel, 0, histogram_share)
            busy_shard(shard, 5_000)
            history = MetricHistory()
            only = AlertEvaluator(rules_distinct(), history).referenced_metrics()
            now = 1_700_000_000.0
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(cycles):
                shard.tick()
                now += STEP_S
                data = tel.metric_reader.get_metrics_data()
                history.ingest(data, now, only=only)
                del data
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            values = 0
            for name in only:
                for _, series in history.select(name):
                    for value in series.values:
                        values += (len(value[1]) + 2) if isinstance(value, tuple) else 1
            return used / values
        finally:
            tel.shutdown()

    return one_round


def main() -> int:
    if sys.argv[1:2] == ["--scaling-worker"]:
        return scaling_worker(int(sys.argv[2]), float(sys.argv[3]))
    # several meters share the lead's views: the SDK logs a harmless identity warning
    logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.ERROR)
    # the bench's gauge rules exceed the per-rule notification rate on purpose
    logging.getLogger("otel_botmon.alerting").setLevel(logging.ERROR)

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--histogram-share", type=float, default=0.1,
                            help="fraction of the series that are histograms (default 0.1)")

    bench = Bench("alerting", __doc__, extra=extra)
    share = bench.args.histogram_share
    evaluation_over_collect(bench, "distinct", 1.0, share)
    evaluation_over_collect(bench, "shaped", 0.5, share)
    scaling(bench, share)
    scaling_with_collector(bench, share)
    cycles = 60 if bench.args.quick else int(3600 / STEP_S)
    bench.rounds(
        "alerting.history.bytes", memory_round(cycles, share), target=20.0, unit="B",
        rounds=1,
        workload=f"history bytes per stored value (tracemalloc) after {cycles} collects "
                 f"{STEP_S:g} s apart of one shard, histograms busy (5,000 observations "
                 "each before the first collect); a histogram point counts its buckets, "
                 "sum and count",
    )
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
