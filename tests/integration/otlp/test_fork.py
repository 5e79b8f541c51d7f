"""os.fork() while threads record: the child never hangs and its telemetry is exported.

A real fork of the test process while three threads keep recording trades and exchange
calls, many times over; each child records its own trade, flushes, and exits. The
child's spans and metrics must reach a real OTLP receiver through the rotel collector.
A child that hangs is killed by its own SIGALRM, which fails the test (no timing is
asserted beyond that guard).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_botmon import telemetry as botmon_telemetry
from otel_botmon.instrument.exchange import exchange_call, record_api_call
from otel_botmon.instrument.trading import trade
from tests.forking import guard_child, wait_child
from tests.otlp_receiver import OtlpReceiver, RotelCollector

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILDREN = int(os.environ.get("BOTMON_FORK_CHILDREN", "12"))
CHILD_GUARD_S = 30  # SIGALRM in the child: a hang becomes a failure, not a stuck suite
FLUSH_S = 15.0  # generous: the collector is shared with the parent's flood of spans


@pytest.fixture
def recording_threads() -> Iterator[threading.Event]:
    """Three threads recording trades and exchange calls until the test ends."""
    stop = threading.Event()

    def record(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with trade(symbol=f"BG{worker}", side="BUY", quantity=1, price=10.0):
                pass
            with exchange_call(exchange="binance", endpoint="order"):
                pass
            record_api_call(f"/api/v3/order?n={n}&signature=abc", 1.0, 200)
            # paced, so the shared collector can keep up on a loaded machine; the SDK
            # locks are still taken thousands of times a second around each fork
            stop.wait(0.0005)

    threads = [threading.Thread(target=record, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    yield stop
    stop.set()
    for thread in threads:
        thread.join(10)


def _child(index: int, report: Path) -> None:
    """Runs in the forked child: record, flush within the bound, exit. Never returns."""
    code = 1
    try:
        guard_child(CHILD_GUARD_S)
        with trade(symbol=f"CHILD{index}", side="SELL", quantity=2, price=20.0):
            pass
        tel = botmon_telemetry.get_telemetry()
        assert tel is not None
        start = time.monotonic()
        flushed = tel.force_flush(FLUSH_S)
        took = time.monotonic() - start
        report.write_text(f"flushed={flushed} took={took:.3f}\n")
        code = 0 if flushed else 2
    except BaseException:
        report.write_text(traceback.format_exc())
    finally:
        os._exit(code)




def test_children_forked_while_threads_record_finish_and_export(
    rotel: RotelCollector, otlp_receiver: OtlpReceiver, recording_threads: threading.Event,
    tmp_path: Path,
) -> None:
    botmon_telemetry.configure(
        "fork-bot", exchange="binance", otlp_endpoint=rotel.http_endpoint,
        export_interval_s=0.5, set_global=False,
    )
    time.sleep(0.2)  # the recording threads are busy in the SDK by now
    for index in range(CHILDREN):
        report = tmp_path / f"child-{index}.txt"
        pid = os.fork()
        if pid == 0:
            _child(index, report)
        status = wait_child(pid, CHILD_GUARD_S + 10)
        text = report.read_text() if report.exists() else "(no report)"
        assert os.WIFEXITED(status), f"child {index} killed by signal: {text}"
        assert os.WEXITSTATUS(status) == 0, f"child {index}: {text}"
    recording_threads.set()

    wanted = {f"trade CHILD{i}" for i in range(CHILDREN)}
    otlp_receiver.wait_for(lambda r: wanted <= set(r.span_names()), timeout=30)

    def child_trades(receiver: OtlpReceiver) -> set[str]:
        symbols = set()
        for point in receiver.data_points("botmon.trades"):
            for kv in point.attributes:
                if kv.key == "trading.symbol" and kv.value.string_value.startswith("CHILD"):
                    symbols.add(kv.value.string_value)
        return symbols

    otlp_receiver.wait_for(
        lambda r: child_trades(r) == {f"CHILD{i}" for i in range(CHILDREN)}, timeout=30
    )



def _worker(symbol: str) -> None:
    """A multiprocessing worker: records and returns; it never flushes by itself."""
    with trade(symbol=symbol, side="BUY", quantity=1, price=10.0):
        pass


def test_a_multiprocessing_fork_worker_exports_what_it_recorded_before_exiting(
    rotel: RotelCollector, otlp_receiver: OtlpReceiver, recording_threads: threading.Event,
) -> None:
    import multiprocessing

    botmon_telemetry.configure(
        "fork-bot", exchange="binance", otlp_endpoint=rotel.http_endpoint, set_global=False,
    )
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(f"MP{i}",)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(CHILD_GUARD_S)
        assert worker.exitcode == 0
    recording_threads.set()
    wanted = {f"trade MP{i}" for i in range(3)}
    otlp_receiver.wait_for(lambda r: wanted <= set(r.span_names()), timeout=30)


def test_a_forked_childs_trade_metrics_carry_its_own_instance_id(
    rotel: RotelCollector, otlp_receiver: OtlpReceiver, tmp_path: Path,
) -> None:
    """The child's trade counters are the child's series: under the parent's
    service.instance.id the backend would take them for the parent's counter going back."""
    tel = botmon_telemetry.configure(
        "fork-bot", exchange="binance", otlp_endpoint=rotel.http_endpoint, set_global=False,
    )
    with trade(symbol="PARENT", side="BUY", quantity=1, price=10.0):
        pass
    report = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:
        _child(0, report)  # a trade (the lean trade metrics alone), flushed
    status = wait_child(pid, CHILD_GUARD_S + 10)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report.read_text()
    assert tel.force_flush(FLUSH_S)

    def instance_ids(receiver: OtlpReceiver, symbol: str) -> set[str]:
        found = set()
        for resource, _, metric in receiver.metrics():
            if metric.name == "botmon.trades" and any(
                kv.value.string_value == symbol
                for point in metric.sum.data_points for kv in point.attributes
            ):
                found.add(resource["service.instance.id"])
        return found

    otlp_receiver.wait_for(
        lambda r: instance_ids(r, "CHILD0") and instance_ids(r, "PARENT")
        and "trade CHILD0" in r.span_names(), timeout=30)
    child_span_ids = {resource["service.instance.id"]
                      for resource, _, span in otlp_receiver.spans() if span.name == "trade CHILD0"}
    assert instance_ids(otlp_receiver, "PARENT") == {tel.resource.attributes["service.instance.id"]}
    assert instance_ids(otlp_receiver, "CHILD0") == child_span_ids
    assert not child_span_ids & instance_ids(otlp_receiver, "PARENT")


def test_a_forked_child_retries_an_export_the_endpoint_refused(
    otlp_receiver: OtlpReceiver, tmp_path: Path,
) -> None:
    """The child's exporter waits out its retry backoff on an Event renewed at the fork;
    the renewal broke it ("release unlocked lock"), so the child's first refused export
    was lost instead of retried."""
    botmon_telemetry.configure(
        "fork-bot", otlp_endpoint=otlp_receiver.endpoint, export_interval_s=60,
        set_global=False,
    )
    otlp_receiver.fail_next(1, status=503)  # the child's first request
    report = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:
        _child(0, report)
    status = wait_child(pid, CHILD_GUARD_S + 10)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report.read_text()
    otlp_receiver.wait_for(lambda r: "trade CHILD0" in r.span_names(), timeout=10)
