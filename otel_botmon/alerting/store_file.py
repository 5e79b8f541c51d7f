"""The alert store's file: one process at a time, and telling a damaged file from a
locked or read-only one.

``lock_file`` holds an exclusive ``flock`` on ``<file>.lock`` for as long as the store is
open (several stores of one process may share it; the kernel releases it when the
process dies, even by SIGKILL). A second process gets :class:`StoreInUseError` naming
the holder's pid.

:func:`move_aside` moves a damaged file and its ``-wal``/``-shm`` to a name no earlier
move took, owner-only, through a small intent file (``<file>.moving-aside``) so that a
process killed halfway is finished by the next start-up rather than leaving the old
write-ahead log beside the new store (where SQLite would discard it, with the last
transactions of the old file).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

logger = logging.getLogger("otel_botmon.alerting.store")

__all__ = ["NotAFileError", "StoreInUseError", "check_regular", "drop_kept_wal",
           "finish_move_aside", "is_corruption", "is_full", "is_unwritable", "keep_wal",
           "lock_file", "make_private", "move_aside", "rollback_quietly", "unlock_file"]

_COMPANIONS = ("-wal", "-shm")  # moved before the file itself (see the module docstring)
_INTENT = ".moving-aside"


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


def make_private(path: str) -> None:
    """Create ``path`` owner-only (0600) if missing, and tighten it and its ``-wal`` and
    ``-shm`` when an older version (or a umask) left them readable. SQLite gives the
    write-ahead log and shared-memory files it creates the database file's mode, but
    it keeps the mode of those it finds. A device (``/dev/null``) is never changed."""
    for name in (path, *(path + suffix for suffix in _COMPANIONS)):
        flags = os.O_RDWR | os.O_NONBLOCK | (os.O_CREAT if name == path else 0)
        try:
            fd = os.open(name, flags, 0o600)
        except OSError:  # missing companion, or read-only: SQLite says why
            continue
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) and mode & 0o077:
                os.fchmod(fd, 0o600)
        except OSError:
            pass
        finally:
            os.close(fd)


def _free_name(path: str) -> str:
    """``<path>.corrupt-<UTC time to the microsecond>``, with ``-2``, ``-3`` ... when a
    file of that name (or its -wal/-shm) exists: a move never replaces an earlier one."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    base = f"{path}.corrupt-{stamp}"
    target, n = base, 1
    while any(os.path.lexists(target + suffix) for suffix in ("", *_COMPANIONS)):
        n += 1
        target = f"{base}-{n}"
    return target


_KEPT_WAL = "-wal.kept"


def keep_wal(path: str) -> None:
    """Hard-link ``<path>-wal`` to ``<path>-wal.kept`` before the first open. SQLite
    deletes the write-ahead log when it closes a file it found damaged (the probe that
    finds the damage): the link keeps the newest commits for :func:`move_aside`. A link
    left by a process killed after that deletion is put back in place. Call
    :func:`drop_kept_wal` once the file opened."""
    wal, kept = path + "-wal", path + _KEPT_WAL
    scratch = kept + ".tmp"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)  # a link a killed process had not put in place yet
        if os.path.lexists(wal):
            os.link(wal, scratch)
            os.replace(scratch, kept)
            # rename() does nothing when both names are links to one file (a kept link
            # a killed process left to this same log): the scratch name stays, drop it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        elif os.path.lexists(kept) and os.path.lexists(path):
            os.replace(kept, wal)  # killed between the probe and the move
            os.link(wal, kept)
    except OSError as exc:  # no hard links here (some network file systems): go on
        logger.debug("cannot keep %s aside: %s", wal, exc)


def drop_kept_wal(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path + _KEPT_WAL)


def move_aside(path: str) -> Path:
    """Move ``path`` and its -wal/-shm to a fresh ``.corrupt-`` name (0600); return it.
    The caller holds the file's lock (:func:`lock_file`)."""
    target = _free_name(path)
    intent = path + _INTENT
    scratch = intent + ".tmp"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, target.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(scratch, intent)  # the intent is whole or absent, never half written
    _move(path, target)
    os.unlink(intent)
    return Path(target)


def finish_move_aside(path: str) -> Path | None:
    """Finish a move that a killed process began (its intent file is there): move what
    is still at ``path`` to the name it chose. Returns that name, or None when no move
    was interrupted. Call with the file's lock held, before opening it."""
    intent = path + _INTENT
    with contextlib.suppress(FileNotFoundError):
        os.unlink(intent + ".tmp")  # an intent a killed process had not put in place
    try:
        with open(intent, "rb") as f:
            target = f.read().decode()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        target = ""
    if not target.startswith(f"{path}.corrupt-") or "\0" in target:
        os.unlink(intent)  # not one of ours: an interrupted move cannot have written it
        return None
    _move(path, target)
    os.unlink(intent)
    return Path(target)


def _move(path: str, target: str) -> None:
    # the write-ahead log first: a kill after the file itself moved would leave the old
    # log beside the new store, and SQLite would throw it (the newest commits) away
    kept = path + _KEPT_WAL
    if os.path.lexists(kept):  # never left linked to a file SQLite may write again
        if os.path.lexists(path + "-wal"):
            os.unlink(kept)
        else:  # the log the probe deleted
            os.replace(kept, target + "-wal")
    for suffix in (*_COMPANIONS, ""):
        if os.path.lexists(path + suffix):
            os.replace(path + suffix, target + suffix)
        if os.path.exists(target + suffix):
            os.chmod(target + suffix, 0o600)
