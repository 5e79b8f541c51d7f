"""Start-up on a full disk (a real RLIMIT_FSIZE in a child process): the monitor starts
with its alerts in memory and a warning naming the file, and a store already on the disk
is left as it was (read whole at the next start with space)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.alerting.store import AlertStore
from otel_botmon.monitor import MonitoringConfig, SystemMonitor

CHILD = Path(__file__).with_name("startup_full_child.py")


def _start_on_full_disk(db: Path, limit: int, *, in_memory: bool = True) -> None:
    done = subprocess.run([sys.executable, str(CHILD), str(db), str(limit)],
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output  # started, raised an alert, stopped
    assert f"STARTED {in_memory}" in output and "CREATED" in output, output
    if in_memory:
        assert f"alert store {db} cannot be written" in output, output
        assert "IN MEMORY" in output and "Free disk space" in output, output


@pytest.mark.parametrize("limit", [0, 4096, 40_000])
def test_a_new_store_on_a_full_disk_starts_in_memory(tmp_path: Path, limit: int) -> None:
    _start_on_full_disk(tmp_path / "alerts.db", limit)


@pytest.mark.parametrize("room", ["none", "its size"])
async def test_an_existing_store_on_a_full_disk_starts_and_keeps_the_file(
    tmp_path: Path, room: str,
) -> None:
    """No room at all: in memory. Room for what the file has: it opens (the writes that
    find no room later are retried); either way what it held is still there."""
    db = tmp_path / "alerts.db"
    config = MonitoringConfig(alert_store_path=str(db), default_alert_rules=False)
    monitor = SystemMonitor(config)
    kept = await monitor.create_custom_alert("stored before", "m", AlertSeverity.CRITICAL)
    monitor.close()
    sizes = [p.stat().st_size for p in tmp_path.glob("alerts.db*")]
    if room == "none":
        _start_on_full_disk(db, 0)
    else:
        _start_on_full_disk(db, max(sizes), in_memory=False)
    store = AlertStore(db)  # space again: everything stored before is there
    try:
        assert store.moved_aside is None and not store.in_memory
        assert kept in [a.id for a in store.load_active()]
    finally:
        store.close()
