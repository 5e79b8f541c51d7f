"""Another process holds the SQLite write lock (``BEGIN IMMEDIATE`` from a plain sqlite3
connection in a child process, as a backup tool or the sqlite3 shell would): the sync
calls a bot makes on its event loop never block it, and their writes land once the lock
is released (a silence call completes only then: it returns once durable)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import Notification, NotificationConfig

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("LOCKED", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
print("RELEASED", flush=True)
"""


@asynccontextmanager
async def write_lock_held(db: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A child process holding the file's write lock until stdin gets a line."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(db),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    try:
        assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"LOCKED"
        yield child
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def release(child: asyncio.subprocess.Process) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"\n")
    await child.stdin.drain()
    assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"RELEASED"
    await child.wait()


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)  # a reader of its own: what is committed, nothing else
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


async def test_silences_and_enqueue_return_at_once_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "alerts.db"
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=str(db), default_alert_rules=False,
        notification_config=NotificationConfig(
            console=False, webhook_urls=["http://127.0.0.1:9/hook"]),
    ))
    store = monitor.alert_manager.store
    dispatcher = monitor.notification_dispatcher
    assert store is not None and dispatcher is not None
    kept = (await monitor.add_silence(['alertname="kept"'], 600))["id"]
    try:
        async with write_lock_held(db) as holder:
            # The store's busy timeout is 5 s: a call that blocked the loop for the lock
            # would stall this loop that long. The silence calls are in effect at once
            # and complete only once stored; enqueue returns at once.
            started = time.monotonic()
            adding = asyncio.create_task(
                monitor.add_silence(['alertname="x"'], 600, comment="maintenance"))
            expiring = asyncio.create_task(monitor.expire_silence(kept))
            await asyncio.sleep(0)  # both ran up to their store write
            queued = dispatcher.enqueue(Notification(alert_id="a-1", title="locked"))
            elapsed = time.monotonic() - started
            assert queued == 1
            assert elapsed < 1.0, f"the calls blocked the loop {elapsed:.2f}s for the lock"
            assert store.queued_writes >= 1
            # in effect in memory at once ...
            [added_now] = monitor.get_silences()
            # ... not on disk while the lock is held, so the calls have not returned
            done, _ = await asyncio.wait({adding, expiring}, timeout=0.3)
            assert not done, "a silence call returned before its write was stored"
            assert await asyncio.to_thread(dispatcher.wait_committed, 0.2) is False
            await release(holder)
        added = await asyncio.wait_for(adding, 30)
        assert added["id"] == added_now["id"]
        assert (await asyncio.wait_for(expiring, 30))["state"] == "expired"
        # returned: stored, with nothing left to settle
        assert [r[0] for r in _rows(db, "SELECT id FROM silences")] == [added["id"]]
        assert await asyncio.to_thread(dispatcher.wait_committed, 30)
        assert _rows(db, "SELECT alert_id, destination FROM notify_outbox") == [
            ("a-1", "webhook#0")]
    finally:
        monitor.close()
    # a restart sees what was written behind
    again = SystemMonitor(MonitoringConfig(alert_store_path=str(db), default_alert_rules=False))
    try:
        assert [s["id"] for s in again.get_silences()] == [added["id"]]
    finally:
        again.close()


async def test_alert_reads_return_while_a_cycle_waits_for_the_lock(tmp_path: Path) -> None:
    """A custom alert's store write waits for another process's lock (on a worker
    thread, holding the evaluator); what the dashboard and the bot read meanwhile
    (active alerts, one alert, firing counts, history) comes back at once, and already
    shows the new alert; its row lands once the lock is released."""
    db = tmp_path / "alerts.db"
    monitor = SystemMonitor(MonitoringConfig(alert_store_path=str(db), default_alert_rules=False))
    manager = monitor.alert_manager
    try:
        before = await manager.create_custom_alert("before", "stored normally")
        async with write_lock_held(db) as holder:
            begun = time.monotonic()
            creating = asyncio.create_task(manager.create_custom_alert("during", "waits"))
            # the store's busy timeout is 5 s: a read that waited for the cycle would
            # only see the alert after it (the write failed, to be retried)
            while not any(a.title == "during" for a in manager.get_active_alerts()):
                assert time.monotonic() - begun < 2.5, "a read waited for the cycle"
                await asyncio.sleep(0.005)
            started = time.monotonic()
            active = manager.get_active_alerts()
            one = manager.get_alert(before)
            counts = manager.evaluator.firing_counts()
            history = manager.get_alert_history(10)
            elapsed = time.monotonic() - started
            assert time.monotonic() - begun < 2.5, "a read waited for the cycle"
            assert elapsed < 1.0, f"the reads waited {elapsed:.2f}s for the cycle"
            assert {a.title for a in active} == {"before", "during"}
            assert one is not None and one.title == "before"
            assert sum(counts.values()) == 2
            assert [a.title for a in history] == ["before"]  # what is committed
            await release(holder)
        during = await creating
        await asyncio.to_thread(manager.evaluate_once)  # a failed write is retried here
        stored = {r[0] for r in _rows(db, "SELECT id FROM alerts")}
        assert {before, during} <= stored
    finally:
        monitor.close()


async def test_the_monitor_starts_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """A backup tool holds the write lock as the bot restarts: the monitor is built (no
    "database is locked" out of the constructor), the stored alert is back, and a new
    alert is stored once the lock goes."""
    db = tmp_path / "alerts.db"
    config = MonitoringConfig(alert_store_path=str(db), default_alert_rules=False,
                              alert_check_interval=0.05)
    before = SystemMonitor(config)
    kept = await before.create_custom_alert("stored before", "m")
    before.close()
    async with write_lock_held(db) as holder:
        started = time.monotonic()
        monitor = SystemMonitor(config)
        try:
            assert time.monotonic() - started < 2.0  # did not wait out the busy timeout
            assert [a.id for a in monitor.alert_manager.get_active_alerts()] == [kept]
            await monitor.start()
            await monitor.create_custom_alert("while locked", "m")
            await release(holder)
            deadline = time.monotonic() + 30
            while len(_rows(db, "SELECT id FROM alerts")) < 2:
                assert time.monotonic() < deadline, "the new alert was never stored"
                await asyncio.sleep(0.05)
        finally:
            await monitor.stop()
            monitor.close()
