"""Benchmark: ``import otel_botmon`` against importing the OpenTelemetry SDK itself.

Run ``python bench/bench_import.py`` (``--repeat N``, ``--quick``). Each round starts
two fresh interpreters, one after the other (the order alternates between rounds), and
each times its own import with ``time.perf_counter`` (interpreter start-up excluded):

  candidate  ``import otel_botmon`` (what a bot that decorates its trades loads)
  baseline   ``import opentelemetry.sdk.trace, opentelemetry.sdk.metrics``

Target (issue 12): median ratio <= 1.5. The candidate's modules are listed once, to show
that nothing of the alert engine, notifiers or dashboard is among them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import Bench

_TIMED = (
    "import sys, time, json\n"
    "start = time.perf_counter()\n"
    "import {modules}\n"
    "took = time.perf_counter() - start\n"
    "print(json.dumps({{'s': took, 'modules': sorted(m for m in sys.modules "
    "if m.startswith('otel_botmon'))}}))\n"
)
CANDIDATE = "otel_botmon"
BASELINE = "opentelemetry.sdk.trace, opentelemetry.sdk.metrics"


def timed_import(modules: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", _TIMED.format(modules=modules)],
                          capture_output=True, text=True, check=True, env=env, timeout=120)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    bench = Bench("import", __doc__, argv)
    seen: dict[str, object] = {}
    turn = [0]

    def one_round() -> float:
        turn[0] += 1
        order = (CANDIDATE, BASELINE) if turn[0] % 2 else (BASELINE, CANDIDATE)
        found = {modules: timed_import(modules) for modules in order}
        seen["modules"] = found[CANDIDATE]["modules"]
        return float(found[CANDIDATE]["s"]) / float(found[BASELINE]["s"])  # type: ignore[arg-type]

    bench.rounds(
        "import.otel_botmon_vs_sdk", one_round, target=1.5, rounds=21,
        warmup=lambda: (timed_import(CANDIDATE), timed_import(BASELINE)),
        workload="fresh interpreter each: `import otel_botmon` / `import "
                 "opentelemetry.sdk.trace, opentelemetry.sdk.metrics` (import time only)",
        detail=lambda: {"otel_botmon_modules": len(seen.get("modules") or [])})
    modules = seen.get("modules") or []
    heavy = [m for m in modules  # type: ignore[attr-defined]
             if m.startswith(("otel_botmon.alerting", "otel_botmon.notify",
                              "otel_botmon.dashboard", "otel_botmon.monitor"))]
    print(f"  otel_botmon modules loaded: {len(modules)}; alerting/notify/dashboard/monitor: "  # type: ignore[arg-type]
          f"{heavy or 'none'}")
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
