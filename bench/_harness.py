"""The one benchmark harness every ``bench/`` script uses.

A figure is a **ratio** of a candidate (A) against a baseline (B) measured in the same
process, because these machines are noisy: absolute times mean little, a ratio measured
in interleaved rounds does. For each figure the harness

- warms both sides up, then runs ``rounds`` rounds; in each round A and B run back to
  back (the order alternates between rounds, so drift and turbo effects hit both) and
  give **one ratio per round**;
- reports the **median** of the per-round ratios (the verdict is on it), the
  interquartile range, the mean, and the 1-minute load average seen while it ran;
- with ``--repeat N`` does all of that N times in one process and reports the median
  of every round together, and each repeat's own median beside it;
- prints one human line per figure, and one JSON line (``BENCH {...}``) that
  ``bench/run_all.py`` collects; ``--json FILE`` appends the same lines to FILE.

Tail-latency figures (``stat="p99"``) time every call of a round separately and take
that round's p99 on each side: a p99 of a few thousand calls is mostly scheduling
noise, so the spread across many paired rounds is reported and the verdict is the
median of the per-round p99 ratios, never one p99 of one run.

A figure that is not "A versus B timed the same way" (memory per series, a whole
fresh process, CPU of another thread) gives the harness a ``round`` callable that
measures one round itself and returns its ratio (``Bench.rounds``).

Usage in a script::

    bench = Bench("trade", __doc__)
    bench.ratio("trade.whole", candidate, baseline, target=0.8, calls=2_000,
                workload="a whole @trade: span, duration, count, volume, notional")
    bench.finish()
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Round = Callable[[], float]
MISSED = 3  # a script's exit code when a figure misses its target (see Bench.finish)


def _loadavg() -> float | None:
    with contextlib.suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (``q`` in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Figure:
    """One figure: its per-round ratios and what they are measured on."""

    script: str
    name: str
    workload: str
    target: float | None
    higher_is_better: bool = False
    ratios: list[float] = field(default_factory=list)
    repeat_medians: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    unit: str = "x"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def iqr(self) -> tuple[float, float]:
        return quantile(self.ratios, 0.25), quantile(self.ratios, 0.75)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.ratios)

    @property
    def holds(self) -> bool | None:
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.median >= self.target
        return self.median <= self.target

    @property
    def verdict(self) -> str:
        holds = self.holds
        return "info" if holds is None else ("holds" if holds else "MISSES")

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}{self.unit}"

    def as_json(self) -> dict[str, Any]:
        q1, q3 = self.iqr
        return {
            "script": self.script, "figure": self.name, "workload": self.workload,
            "unit": self.unit, "target": self.target,
            "higher_is_better": self.higher_is_better, "median": round(self.median, 4),
            "q1": round(q1, 4), "q3": round(q3, 4), "mean": round(self.mean, 4),
            "rounds": len(self.ratios), "repeat_medians": [round(m, 4)
                                                           for m in self.repeat_medians],
            "loadavg": max(self.load) if self.load else None, "verdict": self.verdict,
            **({"detail": self.detail} if self.detail else {}),
        }

    def line(self) -> str:
        q1, q3 = self.iqr
        reps = ""
        if len(self.repeat_medians) > 1:
            reps = "  repeats " + " ".join(f"{m:.3f}" for m in self.repeat_medians)
        load = f"  load {max(self.load):.2f}" if self.load else ""
        return (f"{self.name:<40} median {self.median:8.3f}{self.unit}  "
                f"IQR [{q1:.3f}-{q3:.3f}]  mean {self.mean:.3f}  n={len(self.ratios)}  "
                f"target {self.target_text():<9} {self.verdict}{reps}{load}")


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def time_calls(func: Callable[[], object], calls: int,
               counter: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``calls`` calls in a row."""
    start = counter()
    for _ in range(calls):
        func()
    return (counter() - start) / calls


def p99_calls(func: Callable[[], object], calls: int,
              counter: Callable[[], float] = time.perf_counter) -> float:
    """p99 in seconds of ``calls`` calls, each timed on its own."""
    samples = []
    for _ in range(calls):
        start = counter()
        func()
        samples.append(counter() - start)
    return quantile(samples, 0.99)


class Bench:
    """The figures of one bench script (see the module docstring)."""

    def __init__(self, script: str, doc: str | None = None,
                 argv: Sequence[str] | None = None,
                 extra: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
        parser = argparse.ArgumentParser(
            prog=f"bench/bench_{script}.py", description=(doc or "").split("\n\n")[0])
        parser.add_argument("--repeat", type=int, default=1,
                            help="measure every figure N times in this process")
        parser.add_argument("--rounds", type=int, default=None,
                            help="rounds per figure and repeat (default: the script's)")
        parser.add_argument("--quick", action="store_true",
                            help="few rounds, for a smoke run (figures are not reliable)")
        parser.add_argument("--only", action="append", default=[],
                            help="run only figures whose name contains this (repeatable)")
        parser.add_argument("--json", metavar="FILE",
                            help="append one JSON line per figure to FILE")
        parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                            help="time ratio() calls by wall clock (default) or by this "
                                 "thread's CPU time (less noise on a loaded machine; it "
                                 "leaves out time spent waiting, e.g. for the GIL)")
        if extra is not None:
            extra(parser)
        self.args = parser.parse_args(argv)
        self.script = script
        self.figures: list[Figure] = []
        print(f"== bench {script}: python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpu, load {_loadavg()}, repeat {self.args.repeat}")
        if doc:
            print(doc.strip().split("\n\n")[0])

    def wanted(self, name: str) -> bool:
        only = self.args.only
        return not only or any(part in name for part in only)

    def _rounds(self, default: int) -> int:
        if self.args.rounds:
            return max(1, int(self.args.rounds))
        return max(3, default // 5) if self.args.quick else int(default)

    def rounds(self, name: str, one_round: Round, *, target: float | None, workload: str,
               rounds: int = 15, higher_is_better: bool = False, unit: str = "x",
               warmup: Callable[[], object] | None = None,
               detail: Callable[[], dict[str, Any]] | None = None) -> Figure | None:
        """A figure from ``one_round()``, which measures one round and returns its ratio."""
        if not self.wanted(name):
            return None
        figure = Figure(self.script, name, workload, target, higher_is_better, unit=unit)
        if warmup is not None:
            warmup()
        count = self._rounds(rounds)
        for _ in range(max(1, self.args.repeat)):
            these = []
            gc.collect()  # each repeat starts from a collected heap
            for _ in range(count):
                these.append(float(one_round()))
                load = _loadavg()
                if load is not None:
                    figure.load.append(load)
            figure.ratios.extend(these)
            figure.repeat_medians.append(statistics.median(these))
        if detail is not None:
            figure.detail = detail()
        self._report(figure)
        return figure

    def ratio(self, name: str, candidate: Callable[[], object],
              baseline: Callable[[], object], *, target: float | None, workload: str,
              calls: int = 1_000, rounds: int = 21, stat: str = "mean",
              baseline_calls: int | None = None,
              before_candidate: Callable[[], object] | None = None,
              before_baseline: Callable[[], object] | None = None) -> Figure | None:
        """Candidate time / baseline time per call, in interleaved rounds.

        ``stat="mean"``: each side's mean time per call in the round; ``stat="p99"``:
        each side's p99 of individually timed calls. ``before_candidate`` /
        ``before_baseline`` run (untimed) before each block of that side's calls, e.g.
        to switch a process-wide instrumentation on or off.
        """
        if not self.wanted(name):
            return None
        clock = CLOCKS[self.args.clock]
        timer = p99_calls if stat == "p99" else time_calls
        base_calls = baseline_calls or calls
        flip = [False]

        def side(func: Callable[[], object], count: int,
                 before: Callable[[], object] | None) -> float:
            if before is not None:
                before()
            return timer(func, count, clock)

        def one_round() -> float:
            flip[0] = not flip[0]
            if flip[0]:
                a = side(candidate, calls, before_candidate)
                b = side(baseline, base_calls, before_baseline)
            else:
                b = side(baseline, base_calls, before_baseline)
                a = side(candidate, calls, before_candidate)
            times["a"].append(a)
            times["b"].append(b)
            return a / b

        times: dict[str, list[float]] = {"a": [], "b": []}

        def warm() -> None:
            side(candidate, max(10, calls // 5), before_candidate)
            side(baseline, max(10, base_calls // 5), before_baseline)

        return self.rounds(
            name, one_round, target=target, workload=workload, rounds=rounds, warmup=warm,
            detail=lambda: {
                "stat": stat, "clock": self.args.clock,
                "candidate_us": round(statistics.median(times["a"]) * 1e6, 3),
                "baseline_us": round(statistics.median(times["b"]) * 1e6, 3)})

    def value(self, name: str, measure: Callable[[], float], *, target: float | None,
              workload: str, unit: str, rounds: int = 5,
              higher_is_better: bool = False) -> Figure | None:
        """A figure that is a quantity, not a ratio (bytes per value, ms per 1,000):
        ``measure()`` gives one round's value; the same median/IQR apply."""
        return self.rounds(name, measure, target=target, workload=workload, rounds=rounds,
                           higher_is_better=higher_is_better, unit=unit)

    def _report(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(f"  workload: {figure.workload}")
        print(figure.line())
        if "candidate_us" in figure.detail and "baseline_us" in figure.detail:
            print(f"  {figure.detail.get('stat', 'mean')} per call "
                  f"({figure.detail.get('clock', 'wall')} clock): candidate "
                  f"{figure.detail['candidate_us']:.1f} us, baseline "
                  f"{figure.detail['baseline_us']:.1f} us")
        record = json.dumps(figure.as_json(), sort_keys=True)
        print(f"BENCH {record}", flush=True)
        if self.args.json:
            with open(self.args.json, "a", encoding="utf-8") as out:
                out.write(record + "\n")

    def finish(self) -> int:
        """Print the summary; returns ``MISSED`` when a figure misses its target (0
        otherwise): not 1, which is what Python exits with on an uncaught exception, so
        run_all.py tells a script that broke from one whose figure missed."""
        missed = [f.name for f in self.figures if f.holds is False]
        print(f"== {self.script}: {len(self.figures)} figures, "
              f"{len(missed)} missing their target{': ' + ', '.join(missed) if missed else ''}")
        return MISSED if missed else 0


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """GC off for a block (only where a figure says it measures without the collector)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
