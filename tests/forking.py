"""Helpers for tests that fork: a forked child's hang becomes a failure, not a stuck suite."""

from __future__ import annotations

import os
import signal
import time


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
