"""Child process for the file notifier's tests under a real file size limit.

Usage: python file_append_child.py PATH MODE
Appends lines ``a0``, ``a1``, then a batch ``b0``..``b2`` under an RLIMIT_FSIZE that cuts
it inside its first line (a real EFBIG: the file keeps the part of ``b0`` that fitted)
and prints ``FAILED``. ``retry``: once a line arrives on stdin (the parent has read the
file), lifts the limit and appends that batch again, as the dispatcher's retry does, then
prints ``DONE``. ``wait``: waits to be killed (the outbox
delivers the batch again after the restart).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.notify.file import FileNotifier
from otel_botmon.notify.message import Notification


def batch(prefix: str, count: int) -> list[Notification]:
    return [Notification(alert_id=f"{prefix}{i}", title=f"{prefix}{i}", id=f"{prefix}{i}")
            for i in range(count)]


async def main(path: str, mode: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
    notifier = FileNotifier(path, max_bytes=10**9, backups=1)
    assert (await notifier.send_many(batch("a", 2))).ok
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 100, hard))
    failed = await notifier.send_many(batch("b", 3))
    print("FAILED", failed.outcome.value, failed.detail, flush=True)
    if mode == "wait":
        await asyncio.Event().wait()  # until SIGKILL
    sys.stdin.readline()  # the parent has looked at the cut-short file: retry now
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (await notifier.send_many(batch("b", 3))).ok
    print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
