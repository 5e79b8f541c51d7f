"""A fork waits (bounded) until no thread of the alert store is inside SQLite.

A thread inside SQLite at the fork may hold one of SQLite's own mutexes; the child
inherits it held forever and hangs in its first SQLite call, in C, where neither a
signal handler nor a timeout helps. Every SQLite call of otel_botmon runs under the
store's locks, so ``os.fork()`` takes them first: here a thread works under the store's
lock while the test forks, and the fork returns only after that work ended. A lock held
longer than the bound (a transaction kept open) delays the fork by the bound only, and
the child's store works either way.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path

import pytest

from otel_botmon import _fork
from otel_botmon.alerting.store import AlertStore
from tests.forking import guard_child, wait_child

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


def _fork_using(store: AlertStore, report: Path) -> tuple[float, int]:
    """Fork; the child writes and reads its store and reports. (monotonic time the fork
    returned in the parent, the child's wait status)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            guard_child(30)
            with store.connection() as conn:  # the store's lock works in the child
                conn.execute("CREATE TABLE t (x)")
                conn.execute("INSERT INTO t VALUES (1)")
                assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
            report.write_text("ok")
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    returned = time.monotonic()
    return returned, wait_child(pid, 40)


@pytest.mark.parametrize("which", ["_lock", "_read_lock"])
def test_a_fork_waits_for_the_store_work_in_progress(tmp_path: Path, which: str) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    lock = getattr(store, which)
    entered, release = threading.Event(), threading.Event()
    released_at: list[float] = []

    def work() -> None:
        with lock:  # as a store call does around its SQLite statements
            entered.set()
            release.wait(10)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(10)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    try:
        returned, status = _fork_using(store, tmp_path / "child.txt")
    finally:
        release.set()
        thread.join(10)
        timer.cancel()
    report = (tmp_path / "child.txt").read_text()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    assert released_at and released_at[0] <= returned, "the fork did not wait for the store"
    store.close()


def test_a_lock_held_past_the_bound_delays_the_fork_by_the_bound_only(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():  # kept open across the fork
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    try:
        returned, status = _fork_using(store, tmp_path / "child.txt")
    finally:
        release.set()
        thread.join(10)
    report = (tmp_path / "child.txt").read_text()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    waited = returned - started
    assert _fork._QUIESCE_S * 0.9 <= waited < _fork._QUIESCE_S + 5, waited
    # and the parent's locks were given back: its store goes on
    with store.connection() as conn:
        conn.execute("SELECT 1")
    assert not _fork._held
    store.close()
