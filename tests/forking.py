"""Helpers for tests that fork: a forked child's hang becomes a failure, not a stuck suite."""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path


def guard_child(seconds: int) -> None:
    """In a forked child: SIGKILL-like end after ``seconds`` (SIGALRM's default action;
    pytest-timeout's handler would raise where a finalizer may swallow it, and the child
    would carry on)."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(seconds)


def wait_child(pid: int, limit_s: float) -> int:
    """The wait status of child ``pid``; kills it and fails if it has not exited within
    ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not exit")
        time.sleep(0.01)


def run_child(body: Callable[[], object], report: Path, limit_s: float = 30) -> int:
    """Fork; the child runs ``body`` (guarded, see :func:`guard_child`) and exits 0, or
    writes its traceback to ``report`` and exits 1. The child's wait status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            guard_child(int(limit_s * 2 / 3) or 1)
            body()
            code = 0
        except BaseException:
            report.write_text(traceback.format_exc())
        finally:
            os._exit(code)
    return wait_child(pid, limit_s)
