"""A lock held by another thread at fork time does not hang the child.

Deterministic: a thread holds the lock across the fork (it waits on an event the child
never sets), then the child records into exactly what that lock guards. The child's
own SIGALRM turns a hang into a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.trading import record_position_closed, trade
from tests.forking import run_child

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
    try:
        return run_child(in_child, report)  # the lock stays held until the child is done
    finally:
        release.set()
        thread.join()


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


def _metric_value(tel: Any, name: str) -> Any:
    data = tel.metric_reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    return metric.data.data_points[0].value
    raise AssertionError(f"{name} not collected")


@pytest.mark.parametrize("which", ["host observer", "fanout"])
def test_a_host_collection_in_progress_at_fork_leaves_the_child_collecting(
    telemetry: Any, tmp_path: Path, which: str,
) -> None:
    """The parent's pusher, alert manager or scrape collects the host gauges on its
    thread; a fork at that instant left the child's collections waiting forever."""
    from otel_botmon.observe import host

    observer = host.HostObserver(interval_s=0.01)
    observer.start()
    try:
        lock = observer._lock if which == "host observer" else (
            host._FANOUTS["process.memory.usage"]._lock)

        def collect() -> None:
            assert _metric_value(botmon_telemetry.get_telemetry(), "process.memory.usage") > 0

        report = tmp_path / "child.txt"
        status = _fork_while_held(lock, collect, report)
        text = report.read_text() if report.exists() else ""
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text
    finally:
        observer.stop()


def test_a_forked_child_reports_its_own_process_not_the_parents(
    telemetry: Any, tmp_path: Path,
) -> None:
    import psutil

    from otel_botmon.observe.host import HostObserver

    observer = HostObserver(interval_s=0.01)
    observer.start()
    try:
        observer.sample_now()  # the parent's sample is cached at the fork

        def grow_then_observe() -> None:
            ballast = b"x" * (256 << 20)  # written pages: the child's RSS alone grows
            reported = observer.sample_now().process_memory_bytes
            own = psutil.Process().memory_info().rss
            assert len(ballast) and abs(reported - own) < (64 << 20), (reported, own)

        report = tmp_path / "child.txt"
        status = _fork_while_held(threading.Lock(), grow_then_observe, report)
        text = report.read_text() if report.exists() else ""
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text
    finally:
        observer.stop()


@pytest.mark.parametrize("lock_name", ["pool map", "idle connections"])
@pytest.mark.parametrize("client", ["requests.Session", "urllib3.PoolManager"])
def test_urllib3_locks_held_by_the_parents_export_thread_do_not_hang_the_fork(
    tmp_path: Path, client: str, lock_name: str,
) -> None:
    """Exporters over requests (HTTPS, proxies) and InfluxDB's client take these locks
    for every request; the child drops the parent's connections in its at-fork hook."""
    import requests
    import urllib3

    from otel_botmon import _fork

    url = "http://127.0.0.1:9/v1/traces"  # never connected: the pool exists, idle
    if client == "requests.Session":
        root: Any = requests.Session()
        manager = root.get_adapter(url).poolmanager
    else:
        root = manager = urllib3.PoolManager()
    pool = manager.connection_from_url(url)
    pool._put_conn(pool._new_conn())  # one idle connection for close() to find
    lock = manager.pools.lock if lock_name == "pool map" else pool.pool.mutex
    del pool  # its connections are closed when the manager lets go of it

    def drop_connections() -> None:
        _fork.reset_connections(root)
        assert len(manager.pools) == 0

    report = tmp_path / "child.txt"
    status = _fork_while_held(lock, drop_connections, report)
    text = report.read_text() if report.exists() else ""
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text


def test_primitives_met_while_dropping_connections_still_work() -> None:
    """reset_connections renews what it meets under an exporter; an Event's or a Queue's
    inner lock renewed apart from the methods bound to it broke them."""
    import queue

    from otel_botmon import _fork

    class Client:
        def __init__(self) -> None:
            self.shutdown_event = threading.Event()
            self.condition = threading.Condition(threading.Lock())
            self.waiting: queue.Queue[int] = queue.Queue()

    class Exporter:
        def __init__(self) -> None:
            self.client = Client()

    exporter = Exporter()
    _fork.reset_connections(exporter)
    client = exporter.client
    assert not client.shutdown_event.wait(0.001)  # the SDK's retry backoff
    client.shutdown_event.set()  # its shutdown
    with client.condition:
        client.condition.notify_all()
        client.condition.wait(0.001)
    client.waiting.put(1)
    assert client.waiting.get(timeout=1) == 1
