"""Local HTTP servers that answer like Slack, Telegram, PagerDuty and plain webhooks.

Each :class:`Receiver` is a real HTTP/1.1 server on 127.0.0.1 (a thread), records every
request (path, headers, body, arrival time) and answers from a script of responses
(``respond(...)``) before falling back to the service's normal success answer. Used by
the integration tests and by ``bench/bench_notify.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUCCESS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "slack": (200, {"Content-Type": "text/plain"}, b"ok"),
    "telegram": (200, {"Content-Type": "application/json"},
                 b'{"ok":true,"result":{"message_id":1}}'),
    "pagerduty": (202, {"Content-Type": "application/json"},
                  b'{"status":"success","message":"Event processed"}'),
    "webhook": (200, {"Content-Type": "application/json"}, b'{"received":true}'),
}


@dataclass
class Reply:
    """One scripted answer: status, headers, body, and how long to wait before it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None,
             delay: float = 0.0) -> Reply:
        return cls(status, {"Content-Type": "application/json", **(headers or {})},
                   json.dumps(data).encode(), delay)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Receiver:
    """A scripted HTTP receiver for one kind of service (see ``SUCCESS``)."""

    def __init__(self, kind: str = "webhook", port: int = 0, delay: float = 0.0) -> None:
        self.kind = kind
        self.delay = delay  # applied to every unscripted answer
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self._cond = threading.Condition()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- control -----

    def respond(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._cond:
            self._script.extend(replies)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing arrived
                    self.close_connection = True
                    return
                record = Received("POST", self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}, body,
                                  time.monotonic())
                reply = receiver._next_reply(self.path, body)
                if reply.delay:
                    time.sleep(reply.delay)
                record.status = reply.status
                receiver._record(record)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # ----- internals -----

    def _next_reply(self, path: str = "", body: bytes = b"") -> Reply:
        with self._cond:
            if self._script:
                return self._script.pop(0)
        if self.kind == "telegram":
            refused = telegram_refusal(path, body)
            if refused is not None:
                return refused
        status, headers, ok = SUCCESS[self.kind]
        return Reply(status, dict(headers), ok, self.delay)

    def _record(self, record: Received) -> None:
        with self._cond:
            self.requests.append(record)
            self._cond.notify_all()

    # ----- reading -----

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx."""
        with self._cond:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0, *, delivered: bool = False) -> None:
        """Block until ``count`` requests (or 2xx-answered ones) arrived; AssertionError
        after ``timeout`` seconds."""
        def enough() -> bool:
            rows = self.requests if not delivered else [
                r for r in self.requests if 200 <= r.status < 300]
            return len(rows) >= count

        with self._cond:
            if not self._cond.wait_for(enough, timeout):
                raise AssertionError(
                    f"{self.kind} receiver got {len(self.requests)} requests, wanted {count}"
                )

    async def until(self, count: int, timeout: float = 10.0, *, delivered: bool = False) -> None:
        """Like :meth:`wait_for` but polls without blocking the event loop (the
        dispatcher under test runs on it)."""
        def enough() -> bool:
            return len(self.delivered() if delivered else list(self.requests)) >= count

        await wait_until_async(enough, timeout,
                               what=f"{self.kind} receiver to get {count} requests")


TELEGRAM_LIMIT = 4096
# The Bot API's HTML mode: these tags, and only these entities (named or numeric).
_TELEGRAM_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a",
                            "code", "pre", "span", "tg-spoiler", "tg-emoji", "blockquote"})
_BARE_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)")


class _Entities(HTMLParser):
    """Checks an HTML-mode text as the Bot API parses it: known tags, balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.error: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.error = self.error or f"Unsupported start tag \"{tag}\""
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.error = self.error or f"Unmatched end tag \"{tag}\""

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _bad_request(description: str) -> Reply:
    return Reply.json(400, {"ok": False, "error_code": 400,
                            "description": f"Bad Request: {description}"})


def telegram_refusal(path: str, body: bytes) -> Reply | None:
    """What the Bot API answers a ``sendMessage`` it refuses (None when it accepts): in
    HTML mode the tags must be known and balanced and every ``&`` an entity; the text
    must be 1-4096 characters after entities parsing, counted as Telegram counts them,
    in UTF-16 code units, and not blank."""
    if not path.endswith("/sendMessage"):
        return None
    try:
        request = json.loads(body)
        text = request["text"]
    except (ValueError, KeyError, TypeError):
        return _bad_request("message text is empty")
    if not isinstance(text, str):
        return _bad_request("message text is empty")
    shown = text
    if request.get("parse_mode") == "HTML":
        if _BARE_AMPERSAND.search(text):
            return _bad_request("can't parse entities: unsupported entity")
        parser = _Entities()
        parser.feed(text)
        parser.close()
        if parser.error or parser.open:
            problem = parser.error or f"Can't find end tag corresponding to start tag "\
                f"\"{parser.open[-1]}\""
            return _bad_request(f"can't parse entities: {problem}")
        shown = "".join(parser.text)
    if not shown.strip():
        return _bad_request("message text is empty")
    if len(shown.encode("utf-16-le", "surrogatepass")) // 2 > TELEGRAM_LIMIT:
        return _bad_request("message is too long")
    return None


async def wait_until_async(predicate: Callable[[], object], timeout: float = 10.0,
                           what: str = "condition") -> None:
    """Poll ``predicate()`` from the event loop until truthy; AssertionError on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.02)
