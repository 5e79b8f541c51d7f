"""File channel: one JSON object per line, rotated by size like ``RotatingFileHandler``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from otel_botmon.alerting.model import NotificationChannel
from otel_botmon.notify.base import DeliveryResult, Notifier
from otel_botmon.notify.message import Notification

__all__ = ["FileNotifier"]

logger = logging.getLogger("otel_botmon.notify")


class FileNotifier(Notifier):
    """Appends ``notification.to_dict()`` as a JSON line to ``path``.

    Before a line would take the file past ``max_bytes`` the file is rotated:
    ``alerts.log`` -> ``alerts.log.1`` -> ... -> ``alerts.log.<backups>`` (the oldest is
    removed; with ``backups=0`` the file is truncated). A write error (disk full,
    permissions) is retried by the dispatcher. What is waiting is written in one go
    (one trip to a worker thread for the lines of a whole evaluation cycle); a write
    that fails part-way is retried whole, so a line may repeat (at-least-once).

    A line cut short (the disk full or the process killed inside a write) is removed
    before the next append, the first one of a process and the first after a failed
    write: its notification is written again whole by the retry, and the cut line never
    swallows the next one, so the file stays readable line by line.
    """

    channel = NotificationChannel.FILE
    collapsible = False  # a log keeps one line per notification, storm or not

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backups: int) -> None:
        self.destination = "file"
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._tail_checked = False  # until the first append, and again after a failure

    @property
    def batches(self) -> bool:
        return True

    async def send(self, notification: Notification) -> DeliveryResult:
        return await self.send_many([notification])

    async def send_many(self, notifications: Sequence[Notification]) -> DeliveryResult:
        lines = [(json.dumps(n.to_dict(), ensure_ascii=False) + "\n").encode()
                 for n in notifications]
        try:
            # Disk I/O stays off the event loop that also runs the bot.
            await asyncio.to_thread(self._append_all, lines)
        except OSError as exc:
            self._tail_checked = False  # the write may have left part of a line
            return DeliveryResult.retry(f"file write failed: {type(exc).__name__}: {exc}")
        return DeliveryResult.delivered()

    def _append_all(self, lines: list[bytes]) -> None:
        """Append the lines, opening the file once for all that fit before a rotation."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if not self._tail_checked:
            size = self._cut_torn_line(size)
            self._tail_checked = True
        start = 0
        while start < len(lines):
            if size and size + len(lines[start]) > self.max_bytes:
                self._rotate()
                size = 0
            end = start + 1  # at least one line per file, however long
            size += len(lines[start])
            while end < len(lines) and size + len(lines[end]) <= self.max_bytes:
                size += len(lines[end])
                end += 1
            with self.path.open("ab") as handle:
                handle.write(b"".join(lines[start:end]))
            start = end

    def _cut_torn_line(self, size: int) -> int:
        """Truncate the file after its last newline when it ends inside a line; returns
        the size then."""
        if not size:
            return 0
        with self.path.open("r+b") as handle:
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return size
            end = size
            keep = 0
            while end > 0:  # back to the last newline, 64 KiB at a time
                begin = max(0, end - 65536)
                handle.seek(begin)
                found = handle.read(end - begin).rfind(b"\n")
                if found >= 0:
                    keep = begin + found + 1
                    break
                end = begin
            handle.truncate(keep)
        logger.warning("file notifier: %s ended inside a line (a write cut short); removed "
                       "its last %d byte(s), the notification is written again whole",
                       self.path, size - keep)
        return keep

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            source = self.path.with_name(f"{self.path.name}.{index}")
            if source.exists():
                os.replace(source, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
