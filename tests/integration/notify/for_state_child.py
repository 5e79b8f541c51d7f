"""Child process for the SIGKILL test of ``for`` timers: one rule whose condition always
holds, pending for an hour, evaluated back to back on a clock that moves 5 s a cycle,
until killed.

Usage: python for_state_child.py STORE_PATH
Prints ``READY <t>`` after the first evaluation (the alert is pending and stored) and
``EVAL <t>`` after each later one (``t``: the cycle's evaluation time, epoch seconds).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertRule

T0 = 1_700_000_000.0
STEP_S = 5.0
RULE = AlertRule("level_high", "test.level > 1", for_=3600)


def main(store: str) -> None:
    reader = InMemoryMetricReader()
    level = MeterProvider(metric_readers=[reader]).get_meter("child").create_up_down_counter(
        "test.level")
    level.add(5)
    now = [T0]
    manager = AlertManager(reader=reader, store=store, clock=lambda: now[0], rules=[RULE])
    assert [e.kind.value for e in manager.evaluate_once()] == ["pending"]
    print("READY", now[0], flush=True)
    while now[0] < T0 + RULE.for_ - 10 * STEP_S:  # killed long before it would fire
        now[0] += STEP_S
        assert manager.evaluate_once() == []
        print("EVAL", now[0], flush=True)
        time.sleep(0.002)  # 700 cycles outlast the test's latest kill (0.5 s)
    print("DONE", now[0], flush=True)
    threading.Event().wait()  # for the kill


if __name__ == "__main__":
    main(sys.argv[1])
