"""Peers, measured by the same harness: Logfire, prometheus_client, Prometheus' promtool.

Run ``python bench/bench_peers.py`` (``--quick``, ``--repeat N``). Every figure is the
**peer's** time over ours in interleaved rounds (bench/_harness.py), so above 1 means the
peer costs more. They are informational: no target, the verdict column says ``info``.

The trade workload is bench_trade's (bench/_trade_workload.py): one whole trade of
BTCUSDT, BUY 0.25 at 70,000.0, filled at 70,003.5. Ours is ``@trade`` whose body reports
the fill (span with symbol, side, order type, quantity, price, outcome, fill and
slippage; duration histogram, trade, volume and notional counters, slippage histogram)
on ``configure()``'s pipeline with spans batched to a discarding exporter.

- ``peers.logfire_instrument``: ``@logfire.instrument`` (Logfire's default: arguments
  recorded as attributes) on a local Logfire with the same kind of span pipeline, no
  console, nothing sent; its span only.
- ``peers.logfire_instrument_metrics``: the same plus the same five instruments recorded
  through Logfire's metric API (a reader attached, so they aggregate).
- ``peers.prometheus_client_timer``: prometheus_client metrics only: a labelled
  ``Histogram.time()`` around the body, then the trade, volume and notional ``Counter``
  and the slippage ``Histogram``; no span.
- ``peers.promtool_rules_test``: ``promtool test rules`` / ``botmon rules test`` on one
  generated rule file and test file (both accept it), each a fresh process, wall time.

Logfire is locked in the ``bench`` dependency group and installed beside .venv (it ships
pytest and pydantic plugins) by scripts/test into .tools/sidecar/bench; without it, or
without promtool, those figures are skipped with the reason printed.
"""

from __future__ import annotations

import os
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import DropExporter
from bench._harness import Bench, time_calls
from bench._trade_workload import (
    FILL_PRICE,
    ORDER_TYPE,
    PRICE,
    QUANTITY,
    SIDE,
    SYMBOL,
    decorated_trade,
    trade_attributes,
)

REPO = Path(__file__).resolve().parents[1]
SIDECAR = REPO / ".tools" / "sidecar" / "bench"
PEER_NOTE = "peer / ours (above 1: the peer costs more)"


def skipped(name: str, why: str) -> None:
    print(f"{name:<40} skipped: {why}")


# --- Logfire ----------------------------------------------------------------------------


def import_logfire() -> Any:
    """logfire from .venv, else from the sidecar; None when neither has it."""
    try:
        import logfire
    except ImportError:
        if not SIDECAR.is_dir():
            return None
        site.addsitedir(str(SIDECAR))  # also runs logfire-sdk's .pth
        try:
            import logfire
        except ImportError:
            return None
    return logfire


def logfire_figures(bench: Bench, candidate_ours: Callable[[], object], calls: int) -> None:
    names = ("peers.logfire_instrument", "peers.logfire_instrument_metrics")
    if not any(bench.wanted(n) for n in names):
        return
    logfire = import_logfire()
    if logfire is None:
        for name in names:
            skipped(name, f"logfire is not installed (bash scripts/test installs the locked "
                          f"pin into {SIDECAR.relative_to(REPO)})")
        return
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    reader = InMemoryMetricReader()
    lf = logfire.configure(
        local=True, send_to_logfire=False, console=False, service_name="bench-peers",
        additional_span_processors=[BatchSpanProcessor(DropExporter())],
        metrics=logfire.MetricsOptions(additional_readers=[reader]))

    @lf.instrument("trade {symbol}")
    def span_only(symbol: str, side: str, quantity: float, price: float) -> str:
        return "FILLED"

    duration = lf.metric_histogram("trade.duration", unit="s")
    trades = lf.metric_counter("trades", unit="{trade}")
    volume = lf.metric_counter("trade.volume", unit="{unit}")
    notional = lf.metric_counter("trade.notional", unit="1")
    slippage = lf.metric_histogram("trade.slippage", unit="bp")
    attrs = trade_attributes()
    filled_attrs, pair_attrs, slip_attrs = attrs.filled, attrs.pair, attrs.slippage
    clock = time.perf_counter_ns

    @lf.instrument("trade {symbol}")
    def with_metrics(symbol: str, side: str, quantity: float, price: float) -> str:
        start = clock()
        bp = (FILL_PRICE - price) / price * 10_000.0
        duration.record((clock() - start) / 1e9, filled_attrs)
        trades.add(1, filled_attrs)
        volume.add(quantity, pair_attrs)
        notional.add(quantity * FILL_PRICE, pair_attrs)
        slippage.record(abs(bp), slip_attrs)
        return "FILLED"

    try:
        bench.ratio(
            names[0], lambda: span_only(SYMBOL, SIDE, QUANTITY, PRICE), candidate_ours,
            target=None, calls=calls,
            workload=f"{PEER_NOTE}: @logfire.instrument (span, arguments as attributes; "
                     "local Logfire, spans batched to a discarding exporter) / our whole "
                     "@trade (span + duration, count, volume, notional, slippage)")
        bench.ratio(
            names[1], lambda: with_metrics(SYMBOL, SIDE, QUANTITY, PRICE), candidate_ours,
            target=None, calls=calls,
            workload=f"{PEER_NOTE}: @logfire.instrument + the same five instruments "
                     "through logfire.metric_histogram/metric_counter (a reader attached) / "
                     "our whole @trade")
    finally:
        lf.shutdown()


# --- prometheus_client -------------------------------------------------------------------


def prometheus_client_figure(bench: Bench, candidate_ours: Callable[[], object],
                             calls: int) -> None:
    name = "peers.prometheus_client_timer"
    if not bench.wanted(name):
        return
    try:
        import prometheus_client
    except ImportError:
        skipped(name, "prometheus_client is not installed (the `prometheus` extra)")
        return
    registry = prometheus_client.CollectorRegistry()
    labels = ("symbol", "side", "order_type", "outcome")
    duration = prometheus_client.Histogram("trade_duration_seconds", "d", labels,
                                           registry=registry)
    trades = prometheus_client.Counter("trades", "t", labels, registry=registry)
    volume = prometheus_client.Counter("trade_volume", "v", ("symbol", "side"),
                                       registry=registry)
    notional = prometheus_client.Counter("trade_notional", "n", ("symbol", "side"),
                                         registry=registry)
    slippage = prometheus_client.Histogram("trade_slippage_bp", "s",
                                           ("symbol", "side", "direction"), registry=registry)

    def timed(symbol: str, side: str, quantity: float, price: float) -> str:
        with duration.labels(symbol, side, ORDER_TYPE, "filled").time():
            result = "FILLED"
        trades.labels(symbol, side, ORDER_TYPE, "filled").inc()
        volume.labels(symbol, side).inc(quantity)
        notional.labels(symbol, side).inc(quantity * FILL_PRICE)
        slippage.labels(symbol, side, "adverse").observe(
            abs((FILL_PRICE - price) / price * 10_000.0))
        return result

    bench.ratio(
        name, lambda: timed(SYMBOL, SIDE, QUANTITY, PRICE), candidate_ours, target=None,
        calls=calls,
        workload=f"{PEER_NOTE}: prometheus_client metrics only (labelled Histogram.time() "
                 "around the body, trade/volume/notional Counters, slippage Histogram; no "
                 "span) / our whole @trade")


# --- promtool ---------------------------------------------------------------------------

SERIES = 40        # instances
STEPS = 720        # one sample a minute: 12 hours


def rule_suite(root: Path) -> Path:
    """A rule file (a recording rule, two alerts) and its test file, both of which
    ``promtool test rules`` and ``botmon rules test`` accept; returns the test file."""
    (root / "peers.rules.yml").write_text(
        "groups:\n"
        "  - name: peers\n"
        "    rules:\n"
        "      - record: job:http_requests:rate5m\n"
        "        expr: sum by (job) (rate(http_requests_total[5m]))\n"
        "      - alert: HighRequestRate\n"
        "        expr: rate(http_requests_total[5m]) > 1.5\n"
        "        for: 5m\n"
        "        labels: {severity: warning}\n"
        "      - alert: InstanceDown\n"
        "        expr: up == 0\n"
        "        for: 5m\n"
        "        labels: {severity: page}\n", encoding="utf-8")
    series, high, down = [], [], []
    for i in range(SERIES):
        instance = f"n{i}:9100"
        per_minute = 120 if i % 2 else 60  # 2/s on odd instances, 1/s on even ones
        series.append(f"      - series: 'http_requests_total{{job=\"api\", "
                      f"instance=\"{instance}\"}}'\n        values: '0+{per_minute}x{STEPS}'\n")
        up = f"1x{STEPS // 2} 0x{STEPS - STEPS // 2 - 1}" if i % 5 == 0 else f"1x{STEPS}"
        series.append(f"      - series: 'up{{job=\"api\", instance=\"{instance}\"}}'\n"
                      f"        values: '{up}'\n")
        if i % 2:
            high.append(instance)
        if i % 5 == 0:
            down.append(instance)
    checks = []
    for minute in (60, 240, 480, 700):
        for alert, which, severity in (("HighRequestRate", high, "warning"),
                                       ("InstanceDown", down if minute > STEPS // 2 + 5 else [],
                                        "page")):
            expected = "".join(
                f"          - exp_labels: {{severity: {severity}, job: api, "
                f"instance: '{inst}'}}\n" for inst in which)
            checks.append(f"      - eval_time: {minute}m\n        alertname: {alert}\n"
                          + (f"        exp_alerts:\n{expected}" if expected else ""))
    rate = SERIES // 2 * 2.0 + (SERIES - SERIES // 2) * 1.0
    test = root / "peers.test.yml"
    test.write_text(
        "rule_files: [peers.rules.yml]\n"
        "evaluation_interval: 1m\n"
        "tests:\n"
        "  - interval: 1m\n"
        "    input_series:\n" + "".join(series) +
        "    alert_rule_test:\n" + "".join(checks) +
        "    promql_expr_test:\n"
        "      - expr: job:http_requests:rate5m\n"
        "        eval_time: 600m\n"
        "        exp_samples:\n"
        f"          - labels: 'job:http_requests:rate5m{{job=\"api\"}}'\n"
        f"            value: {rate:g}\n", encoding="utf-8")
    return test


def find_promtool() -> str | None:
    found = shutil.which("promtool")
    if found:
        return found
    return "/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None


def timed_run(command: Sequence[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False, env=env)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return took


def promtool_figure(bench: Bench) -> None:
    name = "peers.promtool_rules_test"
    if not bench.wanted(name):
        return
    promtool = find_promtool()
    if promtool is None:
        skipped(name, "promtool is not installed (bash scripts/test installs it as root on "
                      "Debian)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        test = rule_suite(root)
        theirs = [promtool, "test", "rules", test.name]
        botmon = [sys.executable, "-m", "otel_botmon.cli", "rules", "test", test.name]
        times: dict[str, list[float]] = {"promtool_s": [], "botmon_s": []}
        turn = [0]

        def one_round() -> float:
            turn[0] += 1
            sides = [("promtool_s", theirs), ("botmon_s", botmon)]
            if turn[0] % 2 == 0:
                sides.reverse()
            for key, command in sides:
                times[key].append(timed_run(command, root))
            return times["promtool_s"][-1] / times["botmon_s"][-1]

        bench.rounds(
            name, one_round, target=None, rounds=11,
            warmup=lambda: (timed_run(theirs, root), timed_run(botmon, root)),
            workload=f"{PEER_NOTE}: `promtool test rules` / `botmon rules test` on one "
                     f"generated suite ({SERIES * 2} series x {STEPS + 1} samples, a "
                     "recording rule, 2 alerts, 8 alert checks, 1 expression check), each "
                     "a fresh process, wall time (start-up included)",
            detail=lambda: {k: round(statistics.median(v), 3) for k, v in times.items()})


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("peers", __doc__, argv)
    calls = 300 if bench.args.quick else 1_000
    trade_figures = ("peers.logfire_instrument", "peers.logfire_instrument_metrics",
                     "peers.prometheus_client_timer")
    if any(bench.wanted(n) for n in trade_figures):
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from otel_botmon import telemetry

        tel = telemetry.configure("bench-peers", set_global=False,
                                  span_processors=[BatchSpanProcessor(DropExporter())])
        candidate_ours = decorated_trade()
        time_calls(candidate_ours, calls)  # our series exist before any round
        try:
            logfire_figures(bench, candidate_ours, calls)
            prometheus_client_figure(bench, candidate_ours, calls)
        finally:
            tel.shutdown()
    promtool_figure(bench)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
