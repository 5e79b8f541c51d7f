"""The alert store and the outbox under a killed process, a full disk, a write lock held
by another process and a second process on the same file (real SIGKILL, a real tmpfs,
real SQLite locks, real child processes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.alerting.store import AlertStore
from otel_botmon.alerting.store_file import StoreInUseError
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from tests.forking import guard_child
from tests.integration.notify.receivers import Receiver, wait_until_async
from tests.services import ManagedProcess

CHILD = Path(__file__).with_name("custom_alert_child.py")


def _fired_and_queued(db: Path) -> tuple[set[str], set[str], list[str]]:
    """(alerts with a FIRED, those whose FIRED is to notify, ids of queued FIREDs).

    A FIRED held back by the rate limit (20 per rule per minute: the child fires faster
    than that) is stored with ``notify = 0`` and, by design, has no outbox row until the
    rate allows (a later, deferred FIRED). Counting those as lost made this test fail
    whenever the child got past 20 alerts before the kill (4 of 12 runs at the floors)."""
    conn = sqlite3.connect(db)
    try:
        stored = {r[0] for r in conn.execute(
            "SELECT alert_id FROM alert_events WHERE kind = 'fired'")}
        fired = {r[0] for r in conn.execute(
            "SELECT alert_id FROM alert_events WHERE kind = 'fired' AND notify = 1")}
        held = {r[0] for r in conn.execute(
            "SELECT alert_id FROM alert_events WHERE kind = 'fired' AND notify = 0"
            " AND suppressed != 'rate_limited'")}
        assert not held, f"FIREDs suppressed for another reason than the rate: {held}"
        queued = [r[0] for r in conn.execute(
            "SELECT o.alert_id FROM notify_outbox AS o JOIN notify_messages AS m"
            " ON m.notification_id = o.notification_id"
            " WHERE json_extract(m.payload, '$.event') = 'fired'")]
    finally:
        conn.close()
    return stored, fired, queued


def _created(log: str) -> set[str]:
    """The ids of the complete ``CREATED <id>`` lines: the child's print writes its
    pieces one by one, so SIGKILL can leave the last line cut short."""
    return {line.split()[1] for line in log.split("\n")[:-1] if line.startswith("CREATED ")}


@pytest.mark.parametrize("run", range(12))
async def test_sigkill_at_a_random_instant_never_loses_a_fired_notification(
    tmp_path: Path, run: int,
) -> None:
    db = tmp_path / "alerts.db"
    child = ManagedProcess([sys.executable, str(CHILD), str(db), "http://127.0.0.1:9/hook"],
                           tmp_path / "child.log").start()
    try:
        await wait_until_async(lambda: _created(child.log()) or not child.running(), 60,
                               what="the child's first alert")
        assert child.running(), child.log()
        await asyncio.sleep(random.Random(run).uniform(0.0, 0.05))
        assert child.process is not None
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)
    finally:
        child.stop()
    returned = _created(child.log())
    stored, fired, queued = _fired_and_queued(db)
    assert returned, child.log()
    assert returned <= stored  # create_custom_alert() returned: the alert is stored ...
    assert fired == set(queued)  # ... and no alert is ever stored without its notification
    assert len(queued) == len(set(queued))  # ... nor queued twice


def test_a_second_process_on_the_same_store_is_refused_clearly(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[2]);"
         "from otel_botmon.alerting.store import AlertStore;"
         "s = AlertStore(sys.argv[1]); print('OPEN', flush=True); time.sleep(60)",
         str(db), str(Path(__file__).resolve().parents[3])],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "OPEN"
        refused = f"in use by another process \\(pid {holder.pid}\\)"
        with pytest.raises(StoreInUseError, match=refused):
            SystemMonitor(MonitoringConfig(alert_store_path=str(db), default_alert_rules=False))
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (SIGKILL releases the lock): the file opens again
    AlertStore(db).close()
    # one process may open its own file several times (store and outbox apart)
    first, second = AlertStore(db), AlertStore(db)
    first.close()
    second.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_leaves_the_store_lock_with_the_parent(tmp_path: Path) -> None:
    """A child forked while the store is open (a fork-started pool worker) lives on after
    the parent closed its store: the parent opens the file again, and while the parent
    holds it the child is refused (the lock stays the parent's)."""
    db = tmp_path / "alerts.db"
    store = AlertStore(db)
    to_child, from_parent = os.pipe()
    to_parent, from_child = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            guard_child(30)
            os.close(from_parent)
            os.close(to_parent)
            os.write(from_child, b"r")  # past the at-fork hooks
            os.read(to_child, 1)  # the parent has its store open again
            try:
                AlertStore(db)
            except StoreInUseError as exc:
                os.write(from_child, str(exc).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(to_child)
    os.close(from_child)
    try:
        assert os.read(to_parent, 1) == b"r"
        store.close()
        again = AlertStore(db)  # StoreInUseError naming this very process, before
        os.write(from_parent, b"1")
        refused = os.read(to_parent, 4096).decode()
        assert f"pid {os.getpid()}" in refused, refused
        again.close()
    finally:
        os.close(from_parent)
        os.close(to_parent)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# --- full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root: a real ENOSPC, not a simulated one)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = Path(tempfile.mkdtemp(prefix="botmon-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        with contextlib.suppress(OSError):
            mount.rmdir()


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


async def test_full_disk_keeps_notifications_and_delivers_them_when_space_returns(
    small_disk: Path, webhook_receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=str(small_disk / "alerts.db"), default_alert_rules=False,
        alert_check_interval=0.1,
        notification_config=NotificationConfig(
            console=False, webhook_urls=[f"{webhook_receiver.url}/hook"],
            retry_initial_delay=0.05, retry_max_delay=0.2),
    ))
    await monitor.start()
    try:
        await monitor.create_custom_alert("before", "m", AlertSeverity.CRITICAL)
        await webhook_receiver.until(1, 30)
        filler = _fill(small_disk)
        with caplog.at_level(logging.WARNING):
            ids = [await monitor.create_custom_alert(f"full {i}", "m", AlertSeverity.CRITICAL)
                   for i in range(5)]
            dispatcher = monitor.notification_dispatcher
            assert dispatcher is not None
            # the listener's group commit failed on its thread: all five wait in memory
            await wait_until_async(lambda: len(dispatcher.spool) == 5, 30, what="spooled")
            assert not webhook_receiver.delivered()[1:]
            assert "database or disk is full" in caplog.text
            assert "cannot rollback" not in caplog.text and "no transaction" not in caplog.text
            filler.unlink()  # space returns
            wanted = {"before"} | {f"full {i}" for i in range(5)}
            await wait_until_async(
                lambda: {r.json()["title"] for r in webhook_receiver.delivered()} >= wanted,
                60, what="every notification delivered")
            await wait_until_async(lambda: len(dispatcher.spool) == 0, 30, what="spool empty")
        titles = [r.json()["title"] for r in webhook_receiver.delivered()]
        # each alert made on the full disk is delivered exactly once; "before" may be sent
        # a second time when its delivery's settlement was still in the group commit that
        # the full disk failed (delivery is at-least-once, never lost)
        assert sorted(t for t in titles if t != "before") == [f"full {i}" for i in range(5)]
        assert 1 <= titles.count("before") <= 2
        # the alerts' own state reached the file too (retried by the evaluator)
        store = monitor.alert_manager.store
        assert store is not None
        await wait_until_async(lambda: all(store.get_alert(i) is not None for i in ids), 30,
                               what="alerts stored")
    finally:
        await monitor.stop()
        monitor.close()


# --- another process holds the write lock ----------------------------------------------------


async def test_a_held_write_lock_never_blocks_the_loop_and_the_write_is_retried(
    tmp_path: Path, webhook_receiver: Receiver,
) -> None:
    db = tmp_path / "alerts.db"
    store = AlertStore(db, timeout_s=0.5)
    manager = AlertManager(store=store, interval_s=0.1)
    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, webhook_urls=[f"{webhook_receiver.url}/hook"],
                           retry_initial_delay=0.05),
        store=store)
    manager.add_listener(dispatcher.on_alert_event)
    await dispatcher.start()
    await manager.start()
    # a backup tool, the sqlite3 shell ...: not otel_botmon, so the file lock does not stop it
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    ticks = reads_during_write = 0

    def writer_busy() -> bool:  # another thread holds the store's write lock
        if store._lock.acquire(blocking=False):
            store._lock.release()
            return False
        return True

    async def ticker() -> None:
        nonlocal ticks, reads_during_write
        while True:
            await asyncio.sleep(0.01)
            ticks += 1
            if writer_busy():
                manager.get_alert_history(5)  # a dashboard read, on the loop
                store.load_active()
                if writer_busy():  # ... returned while the write still waited
                    reads_during_write += 1

    task = asyncio.create_task(ticker())
    try:
        alert_id = await manager.create_custom_alert("locked", "m", AlertSeverity.CRITICAL)
        assert ticks > 0  # the loop ran while the write waited for the lock
        assert reads_during_write > 0  # and reads did not queue behind that write
        assert store.get_alert(alert_id) is None  # not stored yet (the lock) ...
        holder.rollback()
        holder.close()
        await webhook_receiver.until(1, 30)  # ... but notified, and stored once it could
        await wait_until_async(lambda: store.get_alert(alert_id) is not None, 30,
                               what="the alert stored after the lock went")
        assert [r.json()["title"] for r in webhook_receiver.delivered()] == ["locked"]
    finally:
        task.cancel()
        await manager.stop()
        await dispatcher.stop()
        dispatcher.close()
        manager.close()


async def test_file_size_limit_keeps_notifications_until_writes_work_again(
    tmp_path: Path, webhook_receiver: Receiver,
) -> None:
    """The same without root: RLIMIT_FSIZE in a child makes every growing write fail."""
    child = ManagedProcess(
        [sys.executable, str(CHILD.with_name("fsize_child.py")), str(tmp_path / "alerts.db"),
         f"{webhook_receiver.url}/hook"], tmp_path / "child.log").start()
    try:
        await wait_until_async(lambda: "DRAINED" in child.log() or not child.running(), 120,
                               what="the child to deliver")
        assert child.process is not None and child.process.wait(30) == 0, child.log()
    finally:
        child.stop()
    log = child.log()
    assert "SPOOLED 5" in log and "DRAINED" in log, log
    assert "cannot be written" in log and "cannot rollback" not in log, log
    titles = sorted(r.json()["title"] for r in webhook_receiver.delivered())
    assert titles == sorted(["before"] + [f"full {i}" for i in range(5)])
