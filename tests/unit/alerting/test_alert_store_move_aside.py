"""Moving a damaged store aside: never over an earlier move, owner-only, and the live
store's write-ahead log and shared memory owner-only too."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.store import AlertStore


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def wal_pair(where: Path, rows: int = 10) -> tuple[bytes, bytes]:
    """A real SQLite file and its write-ahead log as a killed process leaves them (the
    log holds the last commits); returns their bytes."""
    scratch = Path(tempfile.mkdtemp(dir=where)) / "w.db"
    conn = sqlite3.connect(scratch, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the header page stays in the file
    for i in range(rows):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    pair = scratch.read_bytes(), Path(f"{scratch}-wal").read_bytes()
    conn.close()
    shutil.rmtree(scratch.parent)
    return pair


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contents=st.lists(st.binary(min_size=1, max_size=200).map(lambda b: b"junk" + b),
                         min_size=2, max_size=5))
def test_move_asides_in_the_same_second_keep_every_file(
    tmp_path: Path, contents: list[bytes],
) -> None:
    db = Path(tempfile.mkdtemp(dir=tmp_path)) / "alerts.db"
    moved = []
    for content in contents:  # well within one second
        db.write_bytes(content)
        Path(f"{db}-wal").write_bytes(content + b"-wal")
        store = AlertStore(db)
        assert store.moved_aside is not None
        moved.append(store.moved_aside)
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert len(set(moved)) == len(contents)
    assert [m.read_bytes() for m in moved] == contents
    assert [Path(f"{m}-wal").read_bytes() for m in moved] == [c + b"-wal" for c in contents]


def damaged_with_wal(db: Path, where: Path) -> bytes:
    """A store whose file has a damaged header and whose write-ahead log holds its last
    commits; returns the log's bytes."""
    main, wal = wal_pair(where)
    db.write_bytes(b"\xff" * 100 + main[100:])
    Path(f"{db}-wal").write_bytes(wal)
    return wal


def test_the_write_ahead_log_of_a_damaged_file_is_moved_aside_with_it(tmp_path: Path) -> None:
    """SQLite deletes the log when the connection that found the damage closes: the
    newest commits were lost before the move."""
    db = tmp_path / "alerts.db"
    wal = damaged_with_wal(db, tmp_path)
    store = AlertStore(db)
    store.close()
    assert store.moved_aside is not None
    assert Path(f"{store.moved_aside}-wal").read_bytes() == wal
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        [db.name, f"{db.name}.lock", store.moved_aside.name, f"{store.moved_aside.name}-wal"])


def test_moved_aside_files_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    with umask(0):
        wal = damaged_with_wal(db, tmp_path)
        Path(f"{db}-shm").write_bytes(b"\0" * 32768)
        for suffix in ("", "-wal", "-shm"):
            os.chmod(f"{db}{suffix}", 0o644)
        store = AlertStore(db)
        store.close()
    assert store.moved_aside is not None
    for suffix in ("", "-wal"):  # (SQLite deleted the -shm: nothing in it to keep)
        assert _mode(Path(f"{store.moved_aside}{suffix}")) == 0o600, suffix
    assert Path(f"{store.moved_aside}-wal").read_bytes() == wal


def test_the_store_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    """Also when an older version (or a umask of 0) left them readable by everyone."""
    db = tmp_path / "alerts.db"
    with umask(0):
        store = AlertStore(db)
        store.add_event("a", "fired", {})
        for suffix in ("", "-wal", "-shm"):
            assert _mode(Path(f"{db}{suffix}")) == 0o600, suffix
            os.chmod(f"{db}{suffix}", 0o644)  # as an older version left them
        again = AlertStore(tmp_path / "other.db")  # (a second file keeps this one open)
        again.close()
        reader = sqlite3.connect(db)  # keeps -wal and -shm after the store closes
        reader.execute("SELECT 1 FROM alerts").fetchall()
        store.close()
        store = AlertStore(db)
        store.add_event("a", "fired", {})
        for suffix in ("", "-wal", "-shm"):
            assert _mode(Path(f"{db}{suffix}")) == 0o600, suffix
        store.close()
        reader.close()


def test_scratch_files_a_killed_move_left_are_removed_at_start_up(tmp_path: Path) -> None:
    """A kill after the kept log's link or the intent's scratch file was made, before
    either was renamed into place, leaves a ``.tmp`` file: the next start-up removes it
    (healthy store or not)."""
    db = tmp_path / "alerts.db"
    AlertStore(db).close()  # a healthy store, no log left
    for leftover in ("alerts.db-wal.kept.tmp", "alerts.db.moving-aside.tmp"):
        (tmp_path / leftover).write_bytes(b"half")
    AlertStore(db).close()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_kept_log_link_left_by_a_kill_leaves_no_scratch_link(tmp_path: Path) -> None:
    """A process killed after linking its log to ``-wal.kept``: at the next start-up
    both names are links to one file, and rename() between two such links does nothing
    (POSIX), which left the scratch link behind."""
    db = tmp_path / "alerts.db"
    store = AlertStore(db)
    store.close()
    Path(f"{db}-wal").write_bytes(b"")  # a log, and the kept link a kill left to it
    os.link(f"{db}-wal", f"{db}-wal.kept")
    AlertStore(db).close()
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".kept"))]
