"""A child forked while the dashboard serves leaves the parent's sockets to the parent.

The child (a ``multiprocessing`` fork worker, say) lives on while the parent stops its
dashboard. Each check is what the parent's own sockets do, on the real server with a
real, living child: the port can be bound again, a client is refused instead of being
left waiting, and a connection the parent closed is closed for its client.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from otel_botmon.dashboard.server import MonitoringDashboard
from tests.integration.dashboard.conftest import Live

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


@contextmanager
def living_child() -> Iterator[int]:
    """A forked child that lives (blocked on a pipe) until the block ends."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(60)
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        yield pid
    finally:
        os.close(write)  # the child reads end-of-file and exits
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _kept_alive(port: int) -> socket.socket:
    """An open connection that has had one whole answer (the server keeps it alive).
    Blocking: call it off the event loop that serves the dashboard."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/health")
    response = connection.getresponse()
    response.read()
    assert response.status == 200 and connection.sock is not None
    return connection.sock


async def test_the_parent_stops_and_restarts_its_dashboard_while_a_forked_child_lives(
    live: Live,
) -> None:
    port = live.dashboard.port
    client = await asyncio.to_thread(_kept_alive, port)
    with living_child():
        await live.dashboard.stop()
        try:
            assert await asyncio.to_thread(client.recv, 65536) == b""
        except TimeoutError:
            pytest.fail("the connection the parent closed stayed open for its client")
        finally:
            client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        again = MonitoringDashboard(live.monitor, port=port)
        await again.start()  # OSError (address in use) while the child held the socket
        try:
            (await asyncio.to_thread(_kept_alive, port)).close()
        finally:
            await again.stop()


async def test_a_forked_child_does_not_serve_the_dashboard(live: Live) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, b"1" if live.dashboard.running else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"0"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert live.dashboard.running
