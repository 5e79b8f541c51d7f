"""The alert store's file: one process at a time, and telling a damaged file from a
locked or read-only one.

``lock_file`` holds an exclusive ``flock`` on ``<file>.lock`` for as long as the store is
open (several stores of one process may share it; the kernel releases it when the
process dies, even by SIGKILL). A second process gets :class:`StoreInUseError` naming
the holder's pid.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
import threading

logger = logging.getLogger("otel_botmon.alerting.store")

__all__ = ["NotAFileError", "StoreInUseError", "check_regular", "is_corruption", "is_full",
           "is_unwritable", "lock_file", "rollback_quietly", "unlock_file"]


class StoreInUseError(RuntimeError):
    """Another process has the store file open."""


class NotAFileError(OSError):
    """The store path names a device (``/dev/null``), a pipe or a directory, not a file."""


def check_regular(path: str) -> None:
    """Raise :class:`NotAFileError` when ``path`` (its symlinks followed) exists and is
    not a regular file. SQLite would open a device or a pipe and fail on the first read
    or write (or write into /dev/null and lose everything); the store must neither use
    nor change it (``chmod`` /dev/null as root breaks it for every user)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (created below) or unreadable (SQLite says why)
        return
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a character device"
                if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                else "a pipe" if stat.S_ISFIFO(mode) else "a socket")
        raise NotAFileError(errno.EINVAL, f"not a regular file but {kind}", path)


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed", quick_check
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def is_unwritable(exc: BaseException) -> bool:
    if isinstance(exc, (PermissionError, NotAFileError)) or (
        isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    ):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "readonly" in text or "read-only" in text or "unable to open" in text
    )


_SQLITE_IOERR, _SQLITE_FULL = 10, 13


def is_full(exc: BaseException) -> bool:
    """A write failed for want of space: the disk or a quota full, the file size limit
    (``RLIMIT_FSIZE``: SQLite reports that EFBIG as an I/O error)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_IOERR, _SQLITE_FULL)
    text = str(exc).lower()
    return "disk is full" in text or "disk i/o error" in text


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open. SQLite rolls back by itself on some
    errors (a full disk); a second ROLLBACK would raise "no transaction is active" and
    hide the real error."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:  # pragma: no cover - the connection is gone
            logger.debug("rollback failed: %s", exc)


_held_locks: dict[str, list[int]] = {}  # real path -> [descriptor, users, owner pid]
_held_guard = threading.Lock()


def lock_file(path: str) -> str | None:
    """Hold an exclusive lock on ``<path>.lock`` for this process (several stores of one
    process may share a file), or raise :class:`StoreInUseError` naming the process
    that holds it. Returns the key to pass to :func:`unlock_file`; None where file
    locks are not supported."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    key = os.path.realpath(path) + ".lock"
    with _held_guard:
        held = _held_locks.get(key)
        if held is not None and held[2] == os.getpid():  # not one inherited through fork()
            held[1] += 1
            return key
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise StoreInUseError(
                f"alert store {path} is in use by another process (pid {holder}); two "
                "processes on one store would deliver every notification twice. Give each "
                "bot its own alert_store_path (and outbox_path)."
            ) from None
        except OSError:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):  # the pid only names the holder (disk full)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        _held_locks[key] = [fd, 1, os.getpid()]
        return key


def _forget_inherited_locks() -> None:
    """In a forked child: the parent's store locks stay the parent's. A ``flock`` belongs
    to the open file, shared by every copy of its descriptor, and is released when the
    last copy closes: a child that kept its copy (a ``multiprocessing`` worker, for the
    whole run) kept the store locked after the parent closed it, or died, and the
    parent's next monitor on that file got ``StoreInUseError`` naming the parent's own
    pid. Closing the child's copy leaves the parent's lock held."""
    global _held_guard
    _held_guard = threading.Lock()
    for key, held in list(_held_locks.items()):
        if held[2] != os.getpid():
            del _held_locks[key]
            with contextlib.suppress(OSError):
                os.close(held[0])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_locks)


def unlock_file(key: str | None) -> None:
    if key is None:
        return
    with _held_guard:
        held = _held_locks.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del _held_locks[key]
            try:
                os.close(held[0])  # closing the descriptor releases the flock
            except OSError:  # pragma: no cover
                pass
