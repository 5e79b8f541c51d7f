"""Console and file channels: what they write, and size-based rotation."""

from __future__ import annotations

import io
import json
from pathlib import Path

from otel_botmon.notify.console import ConsoleNotifier
from otel_botmon.notify.file import FileNotifier
from tests.unit.notify.fakes import make_notification


async def test_console_writes_the_readable_text() -> None:
    stream = io.StringIO()
    result = await ConsoleNotifier(stream).send(make_notification(7))
    assert result.ok
    assert stream.getvalue().startswith("ALERT [WARNING] FIRING: CPU high 7\n")


async def test_console_on_a_closed_stream_fails_without_raising() -> None:
    stream = io.StringIO()
    stream.close()
    result = await ConsoleNotifier(stream).send(make_notification())
    assert result.outcome.value == "failed"


async def test_file_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "alerts.jsonl"
    notifier = FileNotifier(path, max_bytes=1_000_000, backups=2)
    for i in range(3):
        assert (await notifier.send(make_notification(i))).ok
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["alert_id"] for r in rows] == ["alert-0", "alert-1", "alert-2"]
    assert rows[0]["severity"] == "warning" and rows[0]["value"] == 93.5


async def test_file_rotates_by_size_and_keeps_the_newest_backups(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    line_size = len(json.dumps(make_notification(0).to_dict(), ensure_ascii=False)) + 1
    notifier = FileNotifier(path, max_bytes=line_size * 2 + 10, backups=2)
    for i in range(7):
        await notifier.send(make_notification(i))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= line_size * 2 + 10

    def ids(name: str) -> list[str]:
        return [json.loads(x)["alert_id"] for x in (tmp_path / name).read_text().splitlines()]

    assert ids("alerts.jsonl") == ["alert-6"]
    assert ids("alerts.jsonl.1") == ["alert-4", "alert-5"]
    assert ids("alerts.jsonl.2") == ["alert-2", "alert-3"]


async def test_file_write_error_is_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    result = await FileNotifier(blocker / "alerts.jsonl", 10_000, 1).send(make_notification())
    assert result.outcome.value == "retry"
