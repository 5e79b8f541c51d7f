"""Starting real servers for tests: free ports, binaries, readiness, teardown.

A test that needs a binary that is not installed skips locally; under
``BOTMON_REQUIRE_SERVICES=1`` (set by ``.ci/run``) it fails instead, so CI can never go
green by skipping the real-server tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

LOOPBACK = "127.0.0.1"


def services_required() -> bool:
    return os.environ.get("BOTMON_REQUIRE_SERVICES", "") not in ("", "0", "false")


def missing_service(what: str) -> None:
    """Skip (locally) or fail (CI) because ``what`` is not available."""
    message = f"{what} is not available"
    if services_required():
        pytest.fail(f"{message} and BOTMON_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def require_binary(name: str, *candidates: str) -> str:
    """Path of executable ``name`` (or one of ``candidates``, absolute paths allowed)."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
        if os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
    missing_service(f"binary {name!r}")
    raise AssertionError("unreachable")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_tcp(host: str, port: int, timeout: float = 15.0) -> None:
    """Return once ``host:port`` accepts connections; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{host}:{port} did not accept connections in {timeout}s"
                ) from exc
            time.sleep(0.05)


def wait_for_http(url: str, timeout: float = 15.0, ok_statuses: Sequence[int] = (200,)) -> None:
    """Return once GET ``url`` answers one of ``ok_statuses``; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code in ok_statuses:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready in {timeout}s (last: {last!r})")
        time.sleep(0.05)


def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until truthy; AssertionError with its name after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition {getattr(predicate, '__name__', predicate)} "
                                 f"not met within {timeout}s")
        time.sleep(interval)


class ManagedProcess:
    """A server subprocess with its output in a log file, stopped on ``stop()``.

    ``start()`` may be called again after ``stop()`` (same command, same port) to test
    recovery when a server comes back.
    """

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=self.cwd, start_new_session=True,
        )
        return self

    def start_ready(self, url: str, timeout: float = 30.0,
                    ok_statuses: Sequence[int] = (200,)) -> ManagedProcess:
        """``start()``, then wait until GET ``url`` answers one of ``ok_statuses``; a
        server that does not is stopped and fails the test with its log."""
        self.start()
        try:
            wait_for_http(url, timeout=timeout, ok_statuses=ok_statuses)
        except TimeoutError as exc:
            self.stop()
            raise AssertionError(f"{exc}\n{self.log()}") from exc
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self.process = None
        self._log.close()

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
