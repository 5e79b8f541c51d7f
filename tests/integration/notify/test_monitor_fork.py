"""A ``SystemMonitor`` used in a child forked (os.fork) from a process whose monitor works.

The parent's monitor keeps its SQLite file busy (custom alerts fired, acknowledged and
resolved, silences added and expired, an evaluation every 20 ms, notifications delivered
to a real HTTP receiver) on an event loop of its own thread, and the test forks at random
instants. Each child uses the inherited monitor as a bot would: it fires, acknowledges
and resolves an alert, adds and expires a silence, has its alert's notification delivered
and closes the monitor. The child must never hang (its own SIGALRM turns a hang into a
failure), must not write into the parent's file (its alerts are in memory), must deliver
its own notifications and never the parent's, and ``close()`` must return promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig
from tests.forking import guard_child, wait_child
from tests.integration.notify.receivers import Receiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILDREN = int(os.environ.get("BOTMON_FORK_CHILDREN", "12"))
CHILD_GUARD_S = 30  # SIGALRM in the child: a hang becomes a failure, not a stuck suite
CLOSE_BOUND_S = 5.0
TABLES = ("alerts", "alert_events", "silences", "notify_outbox", "notify_messages",
          "notify_attempts")


def _monitor(store: Path, url: str) -> SystemMonitor:
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=str(store), default_alert_rules=False,
        default_health_checks=False, alert_check_interval=0.02,
        notification_config=NotificationConfig(console=False, webhook_urls=[url]),
    ))
    # every alert of the busy parent (and of each child) is notified: none held back
    monitor.alert_manager.evaluator._gate.max_per_minute = 1_000_000
    return monitor


def _counts(store: Path) -> dict[str, int]:
    """Row counts and the integrity check, through a connection of the test's own."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        assert check == "ok", check
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def _titles(store: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return {json.loads(data)["title"] for (data,) in conn.execute("SELECT data FROM alerts")}
    finally:
        conn.close()


def _check_warned_once(logs: pytest.LogCaptureFixture, store: Path) -> None:
    """In the child: one warning names the parent's file and says nothing is kept."""
    warned = [r.getMessage() for r in logs.records
              if "belongs to the parent process" in r.getMessage()]
    assert len(warned) == 1, warned
    assert str(store) in warned[0] and "NOT persisted" in warned[0], warned[0]


async def _use_in_child(monitor: SystemMonitor, name: str) -> str:
    """What a bot does with the inherited monitor; returns a line for the report."""
    await monitor.start()
    alert_id = await monitor.create_custom_alert(name, "from the child", AlertSeverity.CRITICAL)
    assert (await monitor.acknowledge_alert(alert_id, "child"))["state"] == "firing"
    silence = await monitor.add_silence([f'alertname="{name}-silenced"'], 60.0)
    assert any(s["id"] == silence["id"] for s in monitor.get_silences())
    assert (await monitor.expire_silence(silence["id"]))["state"] == "expired"
    assert (await monitor.resolve_alert(alert_id, "child"))["state"] == "resolved"
    dispatcher = monitor.notification_dispatcher
    assert await dispatcher.drain(timeout=15.0), (
        "the child's notifications were not sent: "
        f"pending={dispatcher.outbox.pending_by_destination()} "
        f"attempts={[(a.alert_id, a.outcome, a.detail) for a in dispatcher.attempts()]} "
        f"idle={dispatcher._idle} in_flight={dispatcher._in_flight} "
        f"spool={len(dispatcher.spool)}")
    sent = [a for a in dispatcher.attempts(alert_id) if a.outcome == "delivered"]
    assert len(sent) >= 2, sent  # fired and resolved (acknowledged too, unless grouped)
    parents = [a for a in dispatcher.attempts() if a.alert_id != alert_id]
    assert not parents, f"the child delivered the parent's notifications: {parents}"
    await monitor.stop()
    return f"alert={alert_id} attempts={len(sent)}"


def _child(monitor: SystemMonitor, name: str, report: Path,
           check: Callable[[], None]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        guard_child(CHILD_GUARD_S)
        line = asyncio.run(_use_in_child(monitor, name))
        started = time.monotonic()
        monitor.close()
        took = time.monotonic() - started
        assert took < CLOSE_BOUND_S, f"close() took {took:.1f} s"
        check()
        report.write_text(f"{line} close={took:.3f}\n")
        code = 0
    except BaseException:
        report.write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _wait_child(pid: int) -> int:
    return wait_child(pid, CHILD_GUARD_S + 10)


def _fork_child(monitor: SystemMonitor, name: str, report: Path,
                check: Callable[[], None]) -> None:
    pid = os.fork()
    if pid == 0:
        _child(monitor, name, report, check)
    status = _wait_child(pid)
    text = report.read_text() if report.exists() else "(no report)"
    assert os.WIFEXITED(status), f"{name}: killed by signal {os.WTERMSIG(status)}: {text}"
    assert os.WEXITSTATUS(status) == 0, f"{name}: {text}"


@contextlib.contextmanager
def _busy_parent(monitor: SystemMonitor) -> Iterator[Callable[[], int]]:
    """The parent's monitor at work on a thread's event loop until the block ends;
    yields a function returning how many rounds of work it did."""
    stop = threading.Event()
    ready = threading.Event()
    rounds = [0]
    failure: list[BaseException] = []

    async def work() -> None:
        await monitor.start()
        ready.set()
        while not stop.is_set():
            n = rounds[0]
            alert_id = await monitor.create_custom_alert(f"parent-{n}", "m",
                                                         AlertSeverity.WARNING)
            await monitor.acknowledge_alert(alert_id, "parent")
            silence = await monitor.add_silence([f'alertname="quiet-{n}"'], 60.0)
            await monitor.expire_silence(silence["id"])
            await monitor.resolve_alert(alert_id, "parent")
            rounds[0] += 1
            await asyncio.sleep(random.uniform(0, 0.005))
        assert await monitor.notification_dispatcher.drain(timeout=30.0)
        await monitor.stop()

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # reported by the test
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="parent-monitor", daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield lambda: rounds[0]
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive(), "the parent's monitor did not stop"
    if failure:
        raise failure[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_children_forked_while_the_monitor_works_use_their_own_store(
    tmp_path: Path, webhook_receiver: Receiver, telemetry: Any, seed: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = tmp_path / "alerts.db"
    rng = random.Random(seed)
    caplog.set_level(logging.WARNING, logger="otel_botmon.alerting.store")
    # closed however the test ends: a monitor left open would be inherited by the next
    # test's children too (a second "belongs to the parent" warning in each)
    with contextlib.closing(_monitor(store, webhook_receiver.url)) as monitor, \
            _busy_parent(monitor) as rounds:
        for index in range(CHILDREN):
            # a random instant of the parent's work: within a store write, a commit of
            # the outbox, a delivery, an evaluation cycle, or between them
            start = rounds()
            while rounds() == start:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.01))
            _fork_child(monitor, f"child-{seed}-{index}", tmp_path / f"child-{index}.txt",
                        lambda: _check_warned_once(caplog, store))
        worked = rounds()

    counts = _counts(store)  # integrity_check is ok
    assert counts["alerts"] >= worked > 0
    assert not {t for t in _titles(store) if t.startswith("child-")}, \
        "a child wrote into the parent's store"
    bodies = [(r.headers.get("idempotency-key"), r.json()) for r in webhook_receiver.requests]
    children = {b["title"] for _, b in bodies if b["title"].startswith("child-")}
    assert children == {f"child-{seed}-{i}" for i in range(CHILDREN)}
    keys = [k for k, b in bodies if b["title"].startswith("parent-")]
    assert len(keys) == len(set(keys)), "a parent's notification was delivered twice"


def test_a_child_forked_amid_a_transaction_leaves_the_parents_file_as_it_was(
    tmp_path: Path, webhook_receiver: Receiver, telemetry: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The worst instant: a thread of the parent is inside a write transaction of the
    store (alert row written, not committed, store lock held) when the process forks."""
    store = tmp_path / "alerts.db"
    monitor = _monitor(store, webhook_receiver.url)
    asyncio.run(monitor.create_custom_alert("before", "m", AlertSeverity.WARNING))
    assert monitor.notification_dispatcher.wait_committed(10)
    before = _counts(store)
    alert_store = monitor.alert_manager.store
    assert alert_store is not None
    inside, release = threading.Event(), threading.Event()

    class Rollback(Exception):
        pass

    def hold_transaction() -> None:
        with contextlib.suppress(Rollback), alert_store.transaction():
            with alert_store.connection() as conn:
                conn.execute("INSERT INTO silences(id, ends_at, data) VALUES ('x', 1, '{}')")
            inside.set()
            release.wait()
            raise Rollback  # the parent's transaction never commits

    holder = threading.Thread(target=hold_transaction, daemon=True)
    holder.start()
    assert inside.wait(10)
    caplog.set_level(logging.WARNING, logger="otel_botmon.alerting.store")
    try:
        _fork_child(monitor, "child-amid", tmp_path / "child.txt",
                    lambda: _check_warned_once(caplog, store))
        assert _counts(store) == before  # while the parent's transaction is still open
    finally:
        release.set()
        holder.join(10)
        monitor.close()  # however the test ends (see above)
    assert _counts(store) == before
    assert "child-amid" not in _titles(store)
    titles = {r.json()["title"] for r in webhook_receiver.requests}
    assert "child-amid" in titles
