"""An ASGI app served by uvicorn inside the running event loop (no threads, no signals)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from typing import Any

from otel_botmon import _fork
from otel_botmon.dashboard.security import ServerLimits

logger = logging.getLogger("otel_botmon.dashboard")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (``port=0``: any free one).

    Raises ``OSError`` (its ``errno`` kept) naming the address when it is taken or not
    local.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it a response written in two parts
        # waits for the client's delayed ACK (40 ms per request on Linux).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = (" (another program, or another dashboard, uses it: pass another port, "
                "or port=0 for any free one)" if exc.errno == errno.EADDRINUSE else "")
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: "
                                 f"{exc.strerror or exc}{hint}") from exc
    return sock


class QuietDisconnects:
    """ASGI wrapper: a client that goes away mid-request (a page closed, a bot task
    cancelled at shutdown) ends that request quietly instead of logging a traceback.

    Likewise the app's lifespan: when the event loop ends with the server still running
    (the guide's ``asyncio.run(main())`` returns right after ``dashboard.start()``), its
    cancellation runs the app's shutdown instead of uvicorn logging the
    ``CancelledError`` traceback Starlette reports as a failed shutdown.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import ClientDisconnect

        if scope.get("type") == "lifespan":
            await self.app(scope, _ShutdownOnCancel(receive), send)
            return
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            logger.debug("client disconnected before the response")


class _ShutdownOnCancel:
    """The lifespan's ``receive``: once started, a cancellation while waiting for the
    server's shutdown message is that message."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._started = False

    async def __call__(self) -> Any:
        if not self._started:
            self._started = True
            return await self._receive()  # lifespan.startup
        try:
            return await self._receive()
        except asyncio.CancelledError:
            return {"type": "lifespan.shutdown"}


class EmbeddedServer:
    """Serve ``app`` on ``host:port`` from the current event loop until ``stop()``."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server",
        limits: ServerLimits | None = None,
    ):
        self.app = app
        self.limits = limits
        """Connection cap and timeouts (see ``ServerLimits``); None: uvicorn's defaults."""
        self.host = host
        self.port = port
        self.name = name
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """The parent serves, not a forked child (whose copy of the event loop never
        runs): the child lets go of the listening socket and the open connections.
        While a child held them, the parent could not bind its port again after a
        stop, a client connecting after it waited for an answer that never came, and
        a connection the parent closed stayed open for its client. Closing the child's
        copies leaves the parent's sockets as they are."""
        server, sock = self._server, self._sock
        self._task = self._server = self._sock = None
        for own in _sockets(server, sock):
            with contextlib.suppress(OSError):
                own.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Returns once the socket accepts connections; ``OSError`` if it cannot bind."""
        import uvicorn

        config = uvicorn.Config(
            QuietDisconnects(self.app), host=self.host, port=self.port, log_level="warning",
            access_log=False, lifespan="on", ws_ping_interval=20.0,
            **(self.limits.uvicorn_settings() if self.limits else {}),
        )
        if self.limits is not None:
            config.load()
            config.http_protocol_class = self.limits.protocol(config.http_protocol_class)
            if config.ws_protocol_class is not None:
                config.ws_protocol_class = self.limits.ws_protocol(config.ws_protocol_class)
        server = uvicorn.Server(config)
        # The host application owns signal handling; an embedded server must not take it.
        # uvicorn >= 0.29 takes signals in capture_signals(); older releases (our floor is
        # 0.26) call install_signal_handlers() from serve(): disarm both, or Ctrl-C would
        # stop only this server and the bot would carry on (and exit 0) without it.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        # Bind here, not in uvicorn: uvicorn's bind-error path calls sys.exit().
        sock = bind_socket(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        self._server, self._sock = server, sock
        self._task = asyncio.get_running_loop().create_task(
            _serve(server, sock), name=f"botmon-{self.name}"
        )
        while not server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise OSError(f"{self.name} could not start on {self.host}:{self.port}")
            await asyncio.sleep(0.01)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving (open connections are closed), waiting at most ``timeout_s``."""
        task, server = self._task, self._server
        self._task = self._server = self._sock = None
        if task is None or server is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception as exc:
            logger.warning("%s stopped with an error: %s", self.name, exc)


async def _serve(server: Any, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:  # also when the loop ends with the server running: no unclosed socket
        sock.close()


def _sockets(server: Any, listening: socket.socket | None) -> list[socket.socket]:
    """The listening socket and those of ``server``'s open connections (uvicorn's)."""
    found = [listening] if listening is not None else []
    for protocol in list(getattr(getattr(server, "server_state", None), "connections", ())):
        transport = getattr(protocol, "transport", None)
        wrapped = transport.get_extra_info("socket") if transport is not None else None
        raw = getattr(wrapped, "_sock", wrapped)  # asyncio's TransportSocket wraps it
        if isinstance(raw, socket.socket):
            found.append(raw)
    return found
