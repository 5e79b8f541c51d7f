"""The file notifier after a write cut short (a real RLIMIT_FSIZE, a real SIGKILL): the
JSON-lines file stays readable line by line and every notification is in it whole."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from otel_botmon.notify.file import FileNotifier
from otel_botmon.notify.message import Notification

CHILD = Path(__file__).with_name("file_append_child.py")


def _lines(path: Path) -> list[str]:
    """The ids of the file's lines; every line must be a whole JSON object."""
    ids = []
    for number, line in enumerate(path.read_bytes().split(b"\n")[:-1], 1):
        try:
            ids.append(json.loads(line)["id"])
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line[:80]!r}...") from None
    return ids


def _cut_short(path: Path, mode: str) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, str(CHILD), str(path), mode],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    failed = child.stdout.readline()
    assert failed.startswith("FAILED retry") and "File too large" in failed, failed
    assert not path.read_bytes().endswith(b"\n")  # the limit really cut a line
    return child


def test_a_write_cut_short_by_the_file_size_limit_is_retried_as_whole_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.jsonl"
    child = _cut_short(path, "retry")
    output, _ = child.communicate("go\n", timeout=60)  # only now may it retry
    assert child.returncode == 0 and "DONE" in output, output
    assert _lines(path) == ["a0", "a1", "b0", "b1", "b2"]
    assert path.read_bytes().endswith(b"\n")


async def test_a_line_cut_short_before_a_kill_does_not_swallow_the_next_start_s_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.jsonl"
    child = _cut_short(path, "wait")
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    # the restarted process delivers the unsettled batch again (the outbox's redelivery)
    notifier = FileNotifier(path, max_bytes=10**9, backups=1)
    again = [Notification(alert_id=f"b{i}", title=f"b{i}", id=f"b{i}") for i in range(3)]
    assert (await notifier.send_many(again)).ok
    assert _lines(path) == ["a0", "a1", "b0", "b1", "b2"]
