"""A lock held by another thread at fork time does not hang the child.

Deterministic: a thread holds the lock across the fork (it waits on an event the child
never sets), then the child records into exactly what that lock guards. The child's
own SIGALRM turns a hang into a failure.
"""

from __future__ import annotations

import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.trading import record_position_closed, trade

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _sdk_locks(tel: Any) -> Iterator[tuple[str, Any]]:
    if tel.trade_metrics is not None:
        yield "trade metrics", tel.trade_metrics._lock
    consumer = tel.meter_provider._measurement_consumer
    yield "measurement consumer", consumer._lock
    for storage in consumer._reader_storages.values():
        yield "reader storage", storage._lock
        for matches in storage._instrument_view_instrument_matches.values():
            for match in matches:
                yield "view instrument match", match._lock
                for aggregation in match._attributes_aggregation.values():
                    yield "aggregation", aggregation._lock


def _fork_while_held(lock: Any, in_child: Callable[[], None], report: Path) -> int:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(20)
            in_child()
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    release.set()
    thread.join()
    _, status = os.waitpid(pid, 0)
    return status


def _record_trades() -> None:
    for _ in range(3):
        with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
            pass
        record_position_closed("BTCUSDT", 1.0)
    tel = botmon_telemetry.get_telemetry()
    assert tel is not None
    points = tel.metric_reader.get_metrics_data()
    assert points is not None


def test_sdk_metric_locks_held_at_fork_are_renewed_in_the_child(
    telemetry: Any, tmp_path: Path,
) -> None:
    with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
        pass  # every storage and aggregation on the trade path exists now
    record_position_closed("BTCUSDT", 1.0)
    kinds = ["trade metrics", "measurement consumer", "reader storage",
             "view instrument match", "aggregation"]
    locks = list(_sdk_locks(telemetry.telemetry))
    assert {kind for kind, _ in locks} == set(kinds)
    for kind in kinds:
        lock = next(lock for k, lock in locks if k == kind)
        report = tmp_path / f"{kind}.txt"
        status = _fork_while_held(lock, _record_trades, report)
        text = report.read_text() if report.exists() else ""
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"{kind}: {text}"


def test_the_child_starts_its_own_series(telemetry: Any, tmp_path: Path) -> None:
    for _ in range(5):
        with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
            pass

    def one_trade_only() -> None:
        with trade(symbol="BTCUSDT", side="BUY", quantity=1, price=10.0):
            pass
        tel = botmon_telemetry.get_telemetry()
        assert tel is not None
        data = tel.metric_reader.get_metrics_data()
        assert data is not None
        values = [getattr(point, "value", None)
                  for rm in data.resource_metrics for sm in rm.scope_metrics
                  for metric in sm.metrics if metric.name == "botmon.trades"
                  for point in metric.data.data_points]
        assert values == [1], values  # not the parent's 5 plus its own

    status = _fork_while_held(threading.Lock(), one_trade_only, tmp_path / "series.txt")
    text = (tmp_path / "series.txt").read_text() if (tmp_path / "series.txt").exists() else ""
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text
