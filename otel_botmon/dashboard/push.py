"""Pushing dashboard snapshots to WebSocket clients.

One snapshot is built and encoded once per update, then handed to every client's own
sender task through a one-slot mailbox (newest wins). A slow client only ever holds the
latest snapshot; a client that disconnects mid-send is dropped without touching the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

logger = logging.getLogger("otel_botmon.dashboard")


class _Client:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.mailbox: asyncio.Queue[str] = asyncio.Queue(maxsize=1)

    def offer(self, message: str) -> None:
        # newest wins: a client that has not taken the previous snapshot gets this one
        if self.mailbox.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.mailbox.get_nowait()
        self.mailbox.put_nowait(message)


class PushHub:
    """Builds snapshots with ``build()`` and pushes them to connected clients.

    ``interval_s`` bounds how stale a client's view can get; ``mark_changed()`` pushes
    sooner (coalesced to at most one build per ``min_gap_s``).
    """

    def __init__(
        self, build: Callable[[], dict[str, Any]], interval_s: float = 2.0,
        min_gap_s: float = 0.25, send_timeout_s: float = 10.0,
    ) -> None:
        self._build = build
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self.send_timeout_s = send_timeout_s
        self._clients: set[_Client] = set()
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pushes = 0
        self.max_age_s = 1.0
        self._version = 0
        self._cached: tuple[int, float, str] | None = None
        self._stopping = False

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="botmon-dashboard-push")

    async def stop(self) -> None:
        task, self._task = self._task, None
        # A flag as well as cancel(): on Python < 3.12, wait_for() can swallow a
        # cancellation that arrives just as the event it waits for is set.
        self._stopping = True
        if self._changed is not None:
            self._changed.set()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for client in list(self._clients):
            with contextlib.suppress(Exception):
                await client.websocket.close(code=1001)
        self._clients.clear()

    def stopping(self) -> bool:
        return self._stopping

    def mark_changed(self) -> None:
        """Something changed: push soon. Safe to call from any thread."""
        self._version += 1
        loop, event = self._loop, self._changed
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    def snapshot_json(self) -> str:
        """The dashboard snapshot as JSON, rebuilt when something changed or after
        ``max_age_s``; polling clients and pushes share one build."""
        now = time.monotonic()
        cached = self._cached
        if cached is not None and cached[0] == self._version and now - cached[1] < self.max_age_s:
            return cached[2]
        version = self._version
        text = json.dumps(self._build(), default=str)
        self._cached = (version, now, text)
        return text

    def encode(self) -> str:
        return '{"type":"dashboard","data":' + self.snapshot_json() + "}"

    async def serve(self, websocket: WebSocket) -> None:
        """Run one accepted connection until it closes."""
        client = _Client(websocket)
        self._clients.add(client)
        sender = asyncio.get_running_loop().create_task(self._send_loop(client))
        try:
            client.offer(self.encode())
            while True:
                text = await websocket.receive_text()
                if text.strip() in ("refresh", '{"type":"refresh"}', '{"type": "refresh"}'):
                    client.offer(self.encode())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._clients.discard(client)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send_loop(self, client: _Client) -> None:
        while True:
            message = await client.mailbox.get()
            try:
                await asyncio.wait_for(
                    client.websocket.send_text(message), timeout=self.send_timeout_s
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # gone or stuck: drop this client only; its receive loop ends too
                self._clients.discard(client)
                with contextlib.suppress(Exception):
                    await client.websocket.close(code=1011)
                return

    async def _run(self) -> None:
        assert self._changed is not None
        while not self.stopping():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.interval_s)
            self._changed.clear()
            if self.stopping():
                return
            if self._clients:
                started = time.monotonic()
                try:
                    message = self.encode()
                except Exception as exc:
                    logger.warning("dashboard snapshot failed: %s", exc)
                else:
                    for client in list(self._clients):
                        client.offer(message)
                    self.pushes += 1
                spent = time.monotonic() - started
                await asyncio.sleep(max(0.0, self.min_gap_s - spent))
