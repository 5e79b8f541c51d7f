"""Start-up survives bad files: a foreign schema is moved aside, unreadable rows are
skipped and counted, a read-only location falls back to memory with a warning naming
the file; the monitor starts in every case."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.model import (
    Alert,
    AlertSeverity,
    AlertState,
    AlertType,
    LabelMatcher,
    Silence,
)
from otel_botmon.alerting.store import AlertStore
from otel_botmon.monitor import MonitoringConfig, SystemMonitor


def _monitor(db: Path) -> SystemMonitor:
    return SystemMonitor(MonitoringConfig(alert_store_path=str(db), default_alert_rules=False))


def test_foreign_schema_is_moved_aside_with_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "botmon.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE alerts (name TEXT, price REAL)")  # somebody else's table
    conn.execute("INSERT INTO alerts VALUES ('BTC', 45000)")
    conn.commit()
    conn.close()
    with caplog.at_level(logging.ERROR, logger="otel_botmon.alerting.store"):
        monitor = _monitor(db)
    store = monitor.alert_manager.store
    assert store is not None and store.moved_aside is not None
    assert store.moved_aside.name.startswith("botmon.db.corrupt-")
    lines = [r for r in caplog.records if r.name == "otel_botmon.alerting.store"]
    assert len(lines) == 1 and str(store.moved_aside) in lines[0].getMessage()
    assert str(db) in lines[0].getMessage() and "not an otel_botmon" in lines[0].getMessage()
    kept = sqlite3.connect(store.moved_aside)  # nothing of theirs was destroyed
    assert kept.execute("SELECT name FROM alerts").fetchall() == [("BTC",)]
    kept.close()
    monitor.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)),
                        min_size=1, max_size=4))
def test_unreadable_rows_are_skipped_and_counted(tmp_path: Path, garbage: list[object]) -> None:
    db = Path(tempfile.mkdtemp(dir=tmp_path)) / "a.db"
    store = AlertStore(db)
    store.save_silence(Silence(id="good", matchers=[LabelMatcher("alertname", "=", "x")],
                               starts_at=0.0, ends_at=4e9))
    with store.connection() as conn:
        for i, value in enumerate(garbage):
            conn.execute("INSERT INTO silences(id, ends_at, data) VALUES (?, ?, ?)",
                         (f"bad{i}", 4e9, value))
        conn.execute("INSERT INTO alerts(id, fingerprint, rule_name, state, started_at, data)"
                     " VALUES ('x', 'f', 'r', 'firing', 1, '{\"broken\": ')")
    store.close()
    monitor = _monitor(db)  # starts: the good silence is back, the bad rows are skipped
    again = monitor.alert_manager.store
    assert again is not None
    assert [s.id for s in monitor.alert_manager.get_silences()] == ["good"]
    assert again.skipped_rows == len(garbage) + 1
    monitor.close()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write: chmod for users, a read-only tmpfs for root."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield folder
        folder.chmod(stat.S_IRWXU)
        return
    folder = Path(tempfile.mkdtemp(prefix="botmon-ro-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a read-only tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        with contextlib.suppress(OSError):
            folder.rmdir()


async def test_read_only_location_falls_back_to_memory_naming_the_file(
    read_only_dir: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    db = read_only_dir / "alerts.db"
    with caplog.at_level(logging.WARNING):
        monitor = _monitor(db)
    store = monitor.alert_manager.store
    assert store is not None and store.in_memory and store.fallback_reason
    assert str(db) in caplog.text and "IN MEMORY" in caplog.text
    alert_id = await monitor.create_custom_alert("still works", "m")
    assert monitor.get_alert(alert_id) is not None
    monitor.close()


def _not_a_file(kind: str, folder: Path) -> Path:
    """A store path naming a FIFO or a character device (a copy of /dev/null's node, made
    here: the real /dev/null must not be touched), directly or through a symlink."""
    target = folder / "node"
    if kind.endswith("fifo"):
        os.mkfifo(target, 0o644)
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(target, 0o666)  # past the umask, as /dev/null is
    if not kind.startswith("symlink"):
        return target
    link = folder / "alerts.db"
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("kind", ["fifo", "symlink to fifo", "chardev", "symlink to chardev"])
async def test_a_store_path_that_is_not_a_regular_file_falls_back_to_memory_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str,
) -> None:
    """``alert_store_path`` pointing at /dev/null (or a pipe): the monitor starts with
    the alerts in memory and a warning naming the file; the node keeps its mode (as root,
    tightening /dev/null to 0600 would break every other user of the machine) and no
    lock, journal or WAL file is made beside it."""
    db = _not_a_file(kind, tmp_path)
    target = db.resolve()
    mode = target.stat().st_mode
    with caplog.at_level(logging.WARNING):
        monitor = _monitor(db)
    store = monitor.alert_manager.store
    assert store is not None and store.in_memory
    assert store.fallback_reason and "not a regular file" in store.fallback_reason
    assert str(db) in caplog.text and "IN MEMORY" in caplog.text
    assert target.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({db.name, target.name})
    alert_id = await monitor.create_custom_alert("still works", "m")
    assert monitor.get_alert(alert_id) is not None
    monitor.close()


def _resolved(alert_id: str) -> str:
    """A resolved alert's stored data."""
    alert = Alert.new(rule_name="r", title=alert_id, message="", labels={},
                      severity=AlertSeverity.WARNING, alert_type=AlertType.CUSTOM,
                      started_at=1.0, channels=[])
    alert.id, alert.state, alert.resolved_at = alert_id, AlertState.RESOLVED, 5.0
    return json.dumps(alert.to_dict(with_events=False))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)),
                        min_size=1, max_size=4))
def test_a_resolved_time_that_is_not_a_number_is_skipped_and_counted(
    tmp_path: Path, garbage: list[object],
) -> None:
    """The cooldowns read at start-up (latest resolution per fingerprint) skip a row whose
    resolved_at is not a number, count it, and keep the good rows of the same
    fingerprint; start-up does not crash."""
    db = Path(tempfile.mkdtemp(dir=tmp_path)) / "a.db"
    store = AlertStore(db)
    insert = ("INSERT INTO alerts(id, fingerprint, rule_name, state, started_at, resolved_at,"
              " data) VALUES (?, 'f', 'r', 'resolved', 1, ?, ?)")
    with store.connection() as conn:
        conn.execute(insert, ("good", 5.0, _resolved("good")))
        for i, value in enumerate(garbage):
            conn.execute(insert, (f"bad{i}", value, _resolved(f"bad{i}")))
        stored = conn.execute(
            "SELECT typeof(resolved_at), resolved_at FROM alerts WHERE id != 'good'"
        ).fetchall()
    store.close()
    kinds = [kind for kind, _ in stored]
    bad = sum(kind not in ("real", "integer", "null") for kind in kinds)
    # text that looks like a number ("10") is stored as one: a sound resolution time
    latest = max([5.0] + [float(v) for k, v in stored if k in ("real", "integer")])
    assume(bad)  # SQLite stores "7" as 7.0: only what stays text or blob is bad
    monitor = _monitor(db)
    again = monitor.alert_manager.store
    assert again is not None
    assert again.skipped_rows == bad
    assert again.last_resolved() == {"f": latest}
    monitor.close()
