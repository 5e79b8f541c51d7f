"""Pushing dashboard updates to WebSocket clients as deltas.

A client first gets the whole snapshot, ``{"type": "dashboard", "at": t, "data": {...}}``,
then ``{"type": "delta", "at": t, "data": {section: value, ...}, "append": {...}}`` with
only the top-level sections that changed since what *that client* was last sent, and the
chart points newer than the last one it has (``append`` holds
``performance.history`` columns to add; the client keeps at most ``history_limit`` points).
A status whose only change is its clock (``timestamp``, ``uptime_seconds``) is not resent:
``at`` is the server's time. An idle tab therefore costs a few dozen bytes per push.

The snapshot is built and encoded once per change (shared by every client and by polling);
each client's sender wakes on a change and computes its own delta at send time, so a slow
client skips intermediate states but never misses a change, and nothing queues up per
client beyond the one message being sent. A client that disconnects mid-send is dropped
without touching the others; one that takes more than ``send_timeout_s`` to take a
message is dropped and its connection ended. Sending ``refresh`` asks for a whole
snapshot again; a client is sent at most one message per ``min_gap_s``, however often it
asks. The dashboard takes only text messages: a binary one closes the socket (1003).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from otel_botmon.dashboard.encoding import dumps

logger = logging.getLogger("otel_botmon.dashboard")

_CLOCK_FIELDS = ("timestamp", "uptime_seconds")
_REFRESH = frozenset({"refresh", '{"type":"refresh"}', '{"type": "refresh"}'})


@dataclass
class _Snapshot:
    version: int
    built: float
    at: float
    text: str
    sections: dict[str, str]
    """Top-level key -> its JSON text (performance without its history)."""
    compare: dict[str, str]
    """What decides "changed": the sections, the status without its clock."""
    history: dict[str, list[Any]]
    history_limit: int


def _split(data: dict[str, Any], text: str, version: int, now: float) -> _Snapshot:
    sections: dict[str, str] = {}
    compare: dict[str, str] = {}
    history: dict[str, list[Any]] = {}
    for key, value in data.items():
        if key == "performance" and isinstance(value, dict):
            history = dict(value.get("history") or {})
            value = {k: v for k, v in value.items() if k != "history"}
        encoded = dumps(value)
        sections[key] = encoded
        if key == "status" and isinstance(value, dict):
            compare[key] = dumps({k: v for k, v in value.items() if k not in _CLOCK_FIELDS})
        else:
            compare[key] = encoded
    stamps = history.get("timestamp") or []
    return _Snapshot(version, now, time.time(), text, sections, compare, history,
                     max(1, len(stamps)))


class _Client:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.wake = asyncio.Event()
        self.sent: dict[str, str] | None = None
        """The ``compare`` texts of what this client was sent (None: send everything)."""
        self.history_ts: float | None = None

    def offer(self, _message: object = None) -> None:
        """Something changed: the sender computes this client's delta when it next runs."""
        self.wake.set()

    def full(self) -> None:
        self.sent = None
        self.wake.set()


class PushHub:
    """Builds snapshots with ``build()`` and pushes them to connected clients.

    ``interval_s`` bounds how stale a client's view can get (an unchanged view costs a
    tiny delta); ``mark_changed()`` pushes sooner (coalesced to at most one build per
    ``min_gap_s``).
    """

    def __init__(
        self, build: Callable[[], dict[str, Any]], interval_s: float = 2.0,
        min_gap_s: float = 0.25, send_timeout_s: float = 10.0, close_timeout_s: float = 1.0,
    ) -> None:
        self._build = build
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self.send_timeout_s = send_timeout_s
        self.close_timeout_s = close_timeout_s
        self._clients: set[_Client] = set()
        self._turn = asyncio.Lock()
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.pushes = 0
        self.bytes_sent = 0
        self.max_age_s = 1.0
        self._version = 0
        self._cached: _Snapshot | None = None
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
            await self._close(client, 1001)
        self._clients.clear()

    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._task is not None

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

    def _snapshot(self) -> _Snapshot:
        now = time.monotonic()
        cached = self._cached
        if cached is not None and cached.version == self._version and \
                now - cached.built < self.max_age_s:
            return cached
        version = self._version
        data = self._build()
        text = dumps(data)
        self._cached = _split(data, text, version, now)
        return self._cached

    def snapshot_json(self) -> str:
        """The dashboard snapshot as JSON, rebuilt when something changed or after
        ``max_age_s``; polling clients and pushes share one build."""
        return self._snapshot().text

    def encode(self) -> str:
        """The whole snapshot as a WebSocket message."""
        snap = self._snapshot()
        return _full_message(snap)

    def encode_for(self, client: _Client) -> str:
        """What ``client`` needs next: everything, or what changed since its last message."""
        snap = self._snapshot()
        stamps = snap.history.get("timestamp") or []
        newest = stamps[-1] if stamps else None
        if client.sent is None:
            client.sent = dict(snap.compare)
            client.history_ts = newest
            return _full_message(snap, self.interval_s)
        changed = [k for k, v in snap.compare.items() if client.sent.get(k) != v]
        for key in changed:
            client.sent[key] = snap.compare[key]
        parts = [f'"{key}":{snap.sections[key]}' for key in changed]
        message = (f'{{"type":"delta","at":{json.dumps(snap.at)},'
                   f'"data":{{{",".join(parts)}}}')
        if stamps and newest != client.history_ts:
            last = client.history_ts
            start = len(stamps)
            while start > 0 and (last is None or stamps[start - 1] > last):
                start -= 1
            append = {col: values[start:] for col, values in snap.history.items()}
            message += (f',"append":{{"performance.history":{dumps(append)}}},'
                        f'"history_limit":{snap.history_limit}')
            client.history_ts = newest
        return message + "}"

    async def serve(self, websocket: WebSocket) -> None:
        """Run one accepted connection until it closes or is dropped."""
        client = _Client(websocket)
        self._clients.add(client)
        loop = asyncio.get_running_loop()
        sender = loop.create_task(self._send_loop(client))
        reader = loop.create_task(self._read_loop(client))
        try:
            client.full()
            # a dropped client ends here too, whether or not it ever sends again
            await asyncio.wait((sender, reader), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(client)
            sender.cancel()
            reader.cancel()
            await asyncio.gather(sender, reader, return_exceptions=True)

    async def _read_loop(self, client: _Client) -> None:
        try:
            while True:
                message = await client.websocket.receive()
                if message["type"] != "websocket.receive":
                    return  # websocket.disconnect
                text = message.get("text")
                if text is None:
                    await self._close(client, 1003, "text messages only")
                    return
                if text.strip() in _REFRESH:
                    client.full()
        except (WebSocketDisconnect, RuntimeError):
            return

    async def _close(self, client: _Client, code: int, reason: str = "") -> None:
        """Close ``client``'s socket, waiting at most ``close_timeout_s``: a client that
        does not read keeps the send buffer full, and the close frame would wait behind
        it for ever (the server aborts the connection when the handler returns)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.websocket.close(code=code, reason=reason),
                                   timeout=self.close_timeout_s)

    async def _send_loop(self, client: _Client) -> None:
        while True:
            await client.wake.wait()
            client.wake.clear()
            if client.sent is None:
                # A whole snapshot is the costly message (copied, compressed per
                # connection, written): let one start per turn of the event loop, so that
                # a hundred tabs reconnecting at once do not hold the bot's loop for
                # seconds. The turn is awaited, never held across a send.
                async with self._turn:
                    await asyncio.sleep(0)
            try:
                message = self.encode_for(client)
            except Exception as exc:
                logger.warning("dashboard snapshot failed: %s", exc)
                continue
            try:
                await asyncio.wait_for(
                    client.websocket.send_text(message), timeout=self.send_timeout_s
                )
                self.bytes_sent += len(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # gone or stuck: drop this client only; serve() then ends its connection
                self._clients.discard(client)
                await self._close(client, 1011, "too slow to take updates")
                return
            # at most one message per min_gap_s to one client, however often it asks
            await asyncio.sleep(self.min_gap_s)

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
                for client in list(self._clients):
                    client.offer()
                self.pushes += 1
                spent = time.monotonic() - started
                await asyncio.sleep(max(0.0, self.min_gap_s - spent))


def _full_message(snap: _Snapshot, interval_s: float | None = None) -> str:
    # interval_s: the longest gap between two pushes (a client can tell a hung server)
    interval = "" if interval_s is None else f'"interval_s":{json.dumps(interval_s)},'
    return (f'{{"type":"dashboard","at":{json.dumps(snap.at)},{interval}'
            f'"history_limit":{snap.history_limit},"data":{snap.text}}}')


def apply_message(view: dict[str, Any] | None, message: dict[str, Any]) -> dict[str, Any]:
    """The client's side of the protocol (the page does the same in JavaScript): the
    view after ``message``. Used by tests and by Python clients."""
    if message.get("type") == "dashboard" or view is None:
        return dict(message.get("data") or {})
    view = dict(view)
    for key, value in (message.get("data") or {}).items():
        if key == "performance" and isinstance(value, dict):
            old = view.get("performance") or {}
            value = {**value, "history": old.get("history", {})}
        view[key] = value
    append = (message.get("append") or {}).get("performance.history")
    if append:
        perf = dict(view.get("performance") or {})
        history = {k: list(v) for k, v in dict(perf.get("history") or {}).items()}
        limit = int(message.get("history_limit") or 0) or None
        for col, values in append.items():
            merged = history.get(col, []) + list(values)
            history[col] = merged[-limit:] if limit else merged
        perf["history"] = history
        view["performance"] = perf
    status = view.get("status")
    if isinstance(status, dict) and message.get("at") is not None:
        status = dict(status)
        status["timestamp"] = message["at"]
        if status.get("running") and status.get("started_at"):
            status["uptime_seconds"] = max(0.0, float(message["at"]) - status["started_at"])
        view["status"] = status
    return view
