"""Benchmark: open orders (``open_order`` ... ``order_filled``), memory and expiry sweep.

Run ``python bench/bench_orders.py`` (``--quick`` for a shorter, noisier run,
``--repeat N``). Figures go through bench/_harness.py (rounds, median / IQR / mean).

Figures and targets (issue 12, "Benchmarks"):

orders.memory_growth_mib
        10,000 orders opened, then all filled, in a fresh process per round (a warm-up
        pass first creates the metric series and instruments): RSS after - RSS before,
        in MiB. Target <= 2 MiB, and no order left open.
orders.idle_sweep_ms_per_1000
        the expiry sweep with 1,000 open orders of which none is due (what every
        open_order / order_filled call pays), ms per sweep. Target <= 1 ms.
orders.due_bookkeeping_ms_per_1000
        the sweep's bookkeeping for 1,000 due orders (finding, unlinking, remembering
        them, recording switched off), ms. Target <= 1 ms.
orders.expired_vs_trade
        1,000 due orders finished as expired, per order, against one ``with trade()``
        on the same pipeline in the same round (the sweep records one trade per expired
        order, so this says what that recording costs next to a trade). Informational.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import Bench  # noqa: E402

MIB = 1024 * 1024


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _open_and_fill(n: int, tag: str) -> tuple[int, int]:
    """Open ``n`` orders, then fill them all; (RSS with all open, orders left open)."""
    from otel_botmon.instrument.orders import open_order, open_order_count, order_filled

    for i in range(n):
        open_order(f"{tag}-{i}", "BTC/USDT", "BUY", 0.01, 45000.0, "LIMIT")
    peak = _rss()
    for i in range(n):
        order_filled(f"{tag}-{i}", 45010.0, 0.01)
    return peak, open_order_count()


def scenario_memory() -> dict[str, Any]:
    import otel_botmon

    otel_botmon.configure("bench-orders", set_global=False)
    n = 10_000
    _open_and_fill(n, "warm")  # series, instruments, allocator pools
    gc.collect()
    before = _rss()
    peak, left = _open_and_fill(n, "run")
    gc.collect()
    after = _rss()
    otel_botmon.shutdown()
    return {
        "orders": n, "rss_before_mib": before / MIB, "rss_open_mib": peak / MIB,
        "rss_after_mib": after / MIB, "growth_mib": (after - before) / MIB,
        "left_open": left, "target_mib": 2.0, "ok": (after - before) <= 2 * MIB and left == 0,
    }


def sweep_figures(bench: Bench) -> None:
    """The sweep figures, in this process on one configured pipeline."""
    import otel_botmon
    from otel_botmon.instrument import orders
    from otel_botmon.instrument.orders import expire_orders, open_order, set_order_limits
    from otel_botmon.instrument.trading import trade

    otel_botmon.configure("bench-orders", set_global=False)
    n = 1000
    turn = [0]

    def fill_book(prefix: str, due: bool) -> None:
        turn[0] += 1
        set_order_limits(ttl_s=3600.0)
        for i in range(n):
            open_order(f"{prefix}-{turn[0]}-{i}", "BTC/USDT", "BUY", 0.01, 45000.0, "LIMIT")
        if due:
            set_order_limits(ttl_s=1e-9)  # every one of them is now due

    def idle_round() -> float:
        fill_book("idle", due=False)
        start = time.perf_counter_ns()
        for _ in range(100):  # nothing is due: the sweep looks at the oldest order only
            expire_orders()
        took = (time.perf_counter_ns() - start) / 100 / 1e6
        orders._BOOK.clear()
        return took

    def bookkeeping_round() -> float:
        real_record = orders._record
        orders._record = lambda *a, **k: None  # type: ignore[assignment]
        try:
            fill_book("sel", due=True)
            start = time.perf_counter_ns()
            expire_orders()
            return (time.perf_counter_ns() - start) / 1e6
        finally:
            orders._record = real_record

    times: dict[str, list[float]] = {"expired_us": [], "trade_us": []}

    def expired_round() -> float:
        fill_book("due", due=True)
        gc.collect()
        start = time.perf_counter_ns()
        finished = expire_orders()
        due = (time.perf_counter_ns() - start) / finished / 1000
        start = time.perf_counter_ns()
        for _ in range(n):
            with trade(symbol="BTC/USDT", side="BUY", quantity=0.01, price=45000.0,
                       order_type="LIMIT"):
                pass
        traded = (time.perf_counter_ns() - start) / n / 1000
        times["expired_us"].append(due)
        times["trade_us"].append(traded)
        return due / traded

    try:
        bench.rounds("orders.idle_sweep_ms_per_1000", idle_round, target=1.0, unit=" ms",
                     rounds=15, warmup=idle_round,
                     workload="expire_orders() with 1,000 open orders, none due (ttl 1 h), "
                              "mean of 100 sweeps: ms per sweep")
        bench.rounds("orders.due_bookkeeping_ms_per_1000", bookkeeping_round, target=1.0,
                     unit=" ms", rounds=15, warmup=bookkeeping_round,
                     workload="expire_orders() finding, unlinking and remembering 1,000 due "
                              "orders, their trade recording switched off: ms")
        bench.rounds("orders.expired_vs_trade", expired_round, target=None, rounds=15,
                     warmup=expired_round,
                     workload="1,000 due orders finished as expired by one expire_orders() "
                              "(a trade span + metrics each), per order / one `with "
                              "trade()` of the same order, same pipeline, same round",
                     detail=lambda: {k: round(statistics.median(v), 2)
                                     for k, v in times.items()})
    finally:
        otel_botmon.shutdown()


def _memory_round() -> float:
    out = subprocess.run([sys.executable, __file__, "--scenario", "memory"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["left_open"]:
        raise RuntimeError(f"{result['left_open']} orders left open after all were filled")
    return float(result["growth_mib"])


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["--scenario", "memory"]:  # a child: one memory round
        print(json.dumps(scenario_memory()))
        return 0
    bench = Bench("orders", __doc__, args)
    bench.value("orders.memory_growth_mib", _memory_round, target=2.0, unit=" MiB",
                rounds=5, workload="a fresh process per round: 10,000 orders opened then "
                "all filled (after a warm-up pass of the same): RSS growth in MiB")
    if any(bench.wanted(name) for name in ("orders.idle_sweep_ms_per_1000",
                                           "orders.due_bookkeeping_ms_per_1000",
                                           "orders.expired_vs_trade")):
        sweep_figures(bench)
    return bench.finish()


if __name__ == "__main__":
    sys.exit(main())
