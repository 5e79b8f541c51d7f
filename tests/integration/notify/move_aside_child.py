"""Child process for the move-aside SIGKILL tests: damaged stores, moved aside until killed.

Usage: python move_aside_child.py DIR [STEP]
Each round writes ``DIR/alerts.db`` with a damaged header and a write-ahead log holding
its last commits (the log's bytes also in ``DIR/wal-<round>.bin``), prints ``MADE
<round>``, opens the store (which moves the damaged file aside) and prints ``MOVED
<round>``. With STEP, the child SIGKILLs itself just before the STEP-th rename or
unlink the store's file module makes (a kill inside the move itself).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from otel_botmon.alerting import store_file
from otel_botmon.alerting.store import AlertStore
from tests.unit.alerting.test_alert_store_move_aside import damaged_with_wal


def kill_at_step(step: int) -> None:
    count = [0]

    def step_then(real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            count[0] += 1
            if count[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return call

    class Os:  # the module's view of os, with its renames and unlinks counted
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        replace = staticmethod(step_then(os.replace))
        unlink = staticmethod(step_then(os.unlink))

    store_file.os = Os()  # type: ignore[assignment]


def main(where: Path, step: int | None) -> None:
    print("READY", flush=True)
    db = where / "alerts.db"
    for n in range(10_000):
        scratch = where / f"scratch-{n}"
        scratch.mkdir()
        wal = damaged_with_wal(db, scratch)
        scratch.rmdir()
        (where / f"wal-{n}.bin").write_bytes(wal)
        print("MADE", n, flush=True)
        if step is not None:
            kill_at_step(step)
        store = AlertStore(db)
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        print("MOVED", n, flush=True)
        if step is not None:  # fewer steps than that in a move: the round is done
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
