"""What keeps web pages and unauthenticated clients away from the dashboard.

The dashboard runs inside the trading bot's process and usually on loopback, which does
not make it private: any web page the operator has open can send requests to
``http://127.0.0.1:8001``. Following how Jupyter and Grafana defend local servers:

- **Host allow-list** (DNS rebinding): a page on ``evil.test`` whose name resolves to
  127.0.0.1 sends ``Host: evil.test``; only loopback names, the bind name and configured
  extra names are served (``403 forbidden_host``).
- **Origin check**: a request carrying an ``Origin`` header (every browser POST and
  WebSocket handshake) must come from the dashboard's own origin or a configured one
  (``403 forbidden_origin``). Requests without ``Origin`` (curl, the CLI) pass.
- **JSON only**: a request with a body must be ``application/json``, which a cross-site
  page cannot send without a CORS preflight that the dashboard never answers
  (``415 unsupported_media_type``). A body-less POST without ``Origin`` (the guide's
  ``curl -X POST .../acknowledge``) passes.
- **Token on reads**: with an access token, every ``/api/*`` request, ``/openapi.json``
  and the WebSocket need it (constant-time comparison); the page and its static files
  do not (the page takes the token from the URL fragment).
- **Body limit before auth and parsing**: ``Content-Length`` above the limit is refused
  unread; a streamed body is counted while read and refused at the limit (``413``); a
  body that does not arrive in time gets ``408``.

:class:`ServerLimits` bounds the connections themselves (uvicorn settings plus a
protocol that closes connections over the cap and those that send no complete request
in time), so idle sockets cannot exhaust the bot's file descriptors.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import resource
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importable without the dashboard extra (ServerLimits, GuardPolicy)
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("otel_botmon.dashboard")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DECIDING_HEADERS = frozenset({b"host", b"origin", b"authorization", b"content-type",
                               b"content-length", b"transfer-encoding", b"sec-fetch-site",
                               b"referer"})
_SEEN_SIZE = 256  # allowed Host / Origin values remembered (see GuardPolicy)
_SEEN_MAX_CHARS = 512
_OPEN_PATHS = ("/", "/index.html", "/favicon.ico")
_HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store")]


def _host_name(value: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8001`` -> ``::1``), lower-case; ``""``
    when the port is not a number."""
    value = value.strip().lower()
    port = ""
    if value.startswith("["):
        end = value.find("]")
        name, port = (value[1:end], value[end + 1:]) if end > 0 else (value, "")
    elif value.count(":") == 1:
        name, port = value.split(":", 1)
        port = ":" + port
    else:
        name = value
    if port and not (port[0] == ":" and port[1:].isdigit() and port[1:].isascii()):
        return ""
    return name.rstrip(".")


def _remember(seen: set[Any], value: Any, chars: int) -> None:
    if chars <= _SEEN_MAX_CHARS:
        if len(seen) >= _SEEN_SIZE:
            seen.clear()
        seen.add(value)


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _origin(value: str) -> str:
    """``scheme://host[:port]`` normalised: lower-case, default port dropped."""
    value = value.strip().lower().rstrip("/")
    for scheme, port in (("http://", ":80"), ("https://", ":443")):
        if value.startswith(scheme) and value.endswith(port):
            return value[: -len(port)]
    return value


@dataclass(frozen=True)
class GuardPolicy:
    """Who may talk to the dashboard.

    ``bind_host`` is the address the server listens on: its name is allowed as ``Host``;
    a wildcard bind (``0.0.0.0``/``::``) allows any IP literal (a rebinding attack needs a
    *name*). ``allowed_hosts`` adds names (a reverse proxy's, the machine's DNS name);
    ``allowed_origins`` adds origins such as ``https://grafana.example:3000`` besides the
    dashboard's own. ``max_body_bytes`` bounds request bodies; ``body_timeout_s`` is how
    long a body may take to arrive.
    """

    bind_host: str = "127.0.0.1"
    allowed_hosts: Iterable[str] = ()
    allowed_origins: Iterable[str] = ()
    access_token: str | Mapping[str, str] | None = None
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 10.0
    _hosts: frozenset[str] = field(init=False, repr=False)
    _origins: frozenset[str] = field(init=False, repr=False)
    _any_ip: bool = field(init=False, repr=False)
    # Host and Origin values found allowed (a browser sends the same two on every
    # request): a set lookup instead of parsing both per request. Only what was allowed
    # and short is kept, and the sets are cleared when full, so a client sending ever
    # new values only pays the parsing itself.
    _allowed_hosts_seen: set[str] = field(init=False, repr=False, compare=False)
    _allowed_origins_seen: set[tuple[str, str | None]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        object.__setattr__(self, "allowed_origins", tuple(self.allowed_origins))
        bind = _host_name(self.bind_host) if self.bind_host.strip() else ""
        hosts = set(LOOPBACK_NAMES) | {_host_name(h) for h in self.allowed_hosts}
        if bind not in _WILDCARDS:
            hosts.add(bind)
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_origins",
                           frozenset(_origin(o) for o in self.allowed_origins))
        object.__setattr__(self, "_any_ip", bind in _WILDCARDS)
        object.__setattr__(self, "_allowed_hosts_seen", set())
        object.__setattr__(self, "_allowed_origins_seen", set())

    def host_allowed(self, host: str) -> bool:
        seen = self._allowed_hosts_seen
        if host in seen:
            return True
        allowed = self._host_allowed(host)
        if allowed:
            _remember(seen, host, len(host))
        return allowed

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """Same origin as the (already allowed) ``Host``, or a configured origin."""
        seen = self._allowed_origins_seen
        key = (origin, host)
        if key in seen:
            return True
        allowed = self._origin_allowed(origin, host)
        if allowed:
            _remember(seen, key, len(origin) + len(host or ""))
        return allowed

    def _host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        if name in self._hosts:
            return True
        ip = _ip(name)
        return ip is not None and (self._any_ip or ip.is_loopback)

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        value = _origin(origin)
        if value in self._origins:
            return True
        if host is None:
            return False
        for scheme in ("http://", "https://"):
            if value.startswith(scheme):
                return value == _origin(scheme + host)
        return False  # "null" (sandboxed frames, file://) and anything else

    def token_ok(self, given: str | None) -> bool:
        if self.access_token is None:
            return True
        if given is None:
            return False
        tokens = ([self.access_token] if isinstance(self.access_token, str)
                  else list(self.access_token.values()))
        ok = False
        for token in tokens:  # compare with every token: no timing hint of which matched
            ok |= hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
        return ok


class _Reject(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class DashboardGuard:
    """ASGI middleware enforcing a :class:`GuardPolicy` before the app sees a request."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            body = self._check(scope)
            if body:
                receive = await self._buffer_body(receive)
        except _Reject as reject:
            await _deny(kind, scope, send, reject)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> bool:
        """Raise :class:`_Reject` unless the request may proceed; True if it has a body."""
        policy = self.policy
        host = origin = auth = content_type = length = site = referer = None
        chunked = False
        # A header decided on here must come once: with two, this check and the app
        # (which reads the first) would look at different values.
        for key, value in scope["headers"]:
            if key not in _DECIDING_HEADERS:  # most of a browser's headers: one lookup
                continue
            if key == b"host":
                if host is not None:
                    raise _twice("Host")
                host = value.decode("latin-1")
            elif key == b"origin":
                if origin is not None:
                    raise _twice("Origin")
                origin = value.decode("latin-1")
            elif key == b"authorization":
                if auth is not None:
                    raise _twice("Authorization")
                auth = value.decode("latin-1")
            elif key == b"content-type":
                if content_type is not None:
                    raise _twice("Content-Type")
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                if length is not None:
                    raise _twice("Content-Length")
                length = value
            elif key == b"transfer-encoding":
                chunked = True
            elif key == b"sec-fetch-site":
                if site is not None:  # a browser sends one: the last must not outvote it
                    raise _twice("Sec-Fetch-Site")
                site = value
            elif key == b"referer":
                if referer is not None:
                    raise _twice("Referer")
                referer = value
        if host is None:
            if scope.get("http_version", "1.1") != "1.0":
                raise _Reject(400, "invalid_request", "an HTTP/1.1 request needs a Host header")
        elif not policy.host_allowed(host):
            raise _Reject(403, "forbidden_host",
                          f"Host {host[:100]!r} is not served; allow it with allowed_hosts")
        method = scope.get("method", "GET")
        if origin is not None:
            if not policy.origin_allowed(origin, host):
                raise _Reject(403, "forbidden_origin",
                              f"Origin {origin[:100]!r} is not allowed; requests from other "
                              "sites are refused (allow one with allowed_origins)")
        elif (site is not None or referer is not None) and (
                method not in _SAFE_METHODS or scope["type"] == "websocket"):
            _check_browser_source(policy, site, referer, host)
        has_body = chunked
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Reject(400, "invalid_request", "malformed Content-Length") from None
            if size > policy.max_body_bytes:
                raise _Reject(413, "payload_too_large",
                              f"request bodies are limited to {policy.max_body_bytes} bytes")
            has_body = has_body or size > 0
        if has_body and method not in _SAFE_METHODS:
            media = (content_type or "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                raise _Reject(415, "unsupported_media_type",
                              "a request body must be application/json")
        if policy.access_token is not None and _guarded_path(scope["path"]):
            given = None
            if auth is not None and auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            elif scope["type"] == "websocket":
                given = _query_token(scope.get("query_string", b""))
            if not policy.token_ok(given):
                raise _Reject(401, "unauthorized", "missing or wrong access token")
        return has_body

    async def _buffer_body(self, receive: Receive) -> Receive:
        """Read the whole body (counting, bounded, timed) before the app parses it."""
        limit = self.policy.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise _Reject(408, "request_timeout", "the request body did not arrive in "
                              f"{self.policy.body_timeout_s:g} s") from None
            if message["type"] != "http.request":
                replay: list[Message] = [message]
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "payload_too_large",
                              f"request bodies are limited to {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks),
                           "more_body": False}]
                break

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        return replayed


def _twice(name: str) -> _Reject:
    return _Reject(400, "invalid_request", f"more than one {name} header")


def _check_browser_source(policy: GuardPolicy, site: bytes | None, referer: bytes | None,
                          host: str | None) -> None:
    """A state change (or WebSocket) without ``Origin``: refuse it when the headers only
    a browser sets say it comes from another site (``Sec-Fetch-Site``) or from a page
    whose origin is not allowed (``Referer``), as engines that leave ``Origin`` out of
    form posts still send them. Scripts send neither and pass."""
    if site is not None and site.strip().lower() not in (b"same-origin", b"none"):
        raise _Reject(403, "forbidden_origin",
                      f"Sec-Fetch-Site {site[:40].decode('latin-1')!r}: requests from other "
                      "sites are refused")
    if referer is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(referer.decode("latin-1").strip())
            source = f"{parts.scheme}://{parts.netloc}"
        except ValueError:
            source = "null"
        if not policy.origin_allowed(source, host):
            raise _Reject(403, "forbidden_origin",
                          f"a request from {source[:100]!r} (Referer) is not allowed; "
                          "requests from other sites are refused")


def _guarded_path(path: str) -> bool:
    return not (path in _OPEN_PATHS or path.startswith("/static/"))


def _query_token(query: bytes) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(query.decode("latin-1")).get("token")
    # one token only: with two, this check and the app (which reads the last) would
    # look at different values
    return values[0] if values and len(values) == 1 else None


async def _deny(kind: str, scope: Scope, send: Send, reject: _Reject) -> None:
    body = json.dumps({"error": reject.error, "detail": reject.detail}).encode()
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    if reject.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if kind == "http":
        if reject.status in (408, 413):
            headers.append((b"connection", b"close"))  # the rest of the body is not read
        await send({"type": "http.response.start", "status": reject.status,
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": reject.status,
                    "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # pragma: no cover - servers without the denial-response extension
        await send({"type": "websocket.close", "code": 1008})


# --- connection limits ------------------------------------------------------------------------


def default_max_connections() -> int:
    """A quarter of the process's descriptor limit, at most 256: the bot keeps the rest."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):  # pragma: no cover - platform without the limit
        soft = 1024
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 4096
    return max(4, min(256, soft // 4))


@dataclass(frozen=True)
class ServerLimits:
    """Connection-level bounds for the embedded server.

    ``max_connections`` open connections at most (WebSockets included): a connection over
    the cap is closed as soon as it is accepted. A connection that has not sent a complete
    request head within ``header_timeout_s`` of connecting (or of its previous response)
    is closed, and so is one whose client has taken none of a response for as long;
    idle keep-alive connections close after ``keep_alive_s``. Requests a client pipelines
    are parsed one at a time (h11), each after the previous one's response. A connection
    that sends more than ``max_header_bytes`` without completing a request head is
    closed (a head that arrives whole in one read, at most 256 KiB, is parsed);
    WebSocket messages from clients are limited to ``ws_max_bytes``. A connection told to
    close (the server stopping, a WebSocket handler that has returned) that is still
    open ``close_grace_s`` later is aborted: a peer that stopped reading would otherwise
    keep its socket, its unsent data and the server's shutdown waiting for ever.
    """

    max_connections: int = field(default_factory=default_max_connections)
    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_header_bytes: int = 16 * 1024
    ws_max_bytes: int = 64 * 1024
    close_grace_s: float = 2.0

    def uvicorn_settings(self) -> dict[str, Any]:
        return {
            # h11 parses one request at a time and leaves the rest of what a client
            # pipelined unread until the response is out; httptools parsed every request
            # of a read at once and queued them all, unauthenticated, without bound (a
            # flood of tiny GETs grew the bot's process by gigabytes and held its event
            # loop for seconds)
            "http": "h11",
            "h11_max_incomplete_event_size": self.max_header_bytes,
            "timeout_keep_alive": self.keep_alive_s,
            "limit_concurrency": self.max_connections + 1,
            "ws_max_size": self.ws_max_bytes,
            "ws_max_queue": 4,
        }

    def ws_protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """``base`` (uvicorn's WebSocket protocol class) with a bounded close: once the
        app's handler has returned, or the server shuts down, the connection is aborted
        if it has not closed within ``close_grace_s``."""

        class BoundedWebSocket(_bounded_close(base, self.close_grace_s)):  # type: ignore[misc]
            async def run_asgi(self, *args: Any) -> None:
                try:
                    await super().run_asgi(*args)
                finally:
                    self._botmon_abort_later()

        return BoundedWebSocket

    def protocol(self, base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
        """``base`` (uvicorn's HTTP protocol class) with the cap, the head timeout and
        a bounded close at shutdown (a response the client does not read is cut)."""
        limits = self

        class LimitedProtocol(_bounded_close(base, self.close_grace_s)):  # type: ignore[misc]
            _botmon_timer: asyncio.TimerHandle | None = None
            _botmon_scope: Any = None
            _botmon_cycle: Any = None
            _botmon_head_bytes = 0
            _botmon_sent = 0  # bytes handed to the transport
            _botmon_taken = -1  # of those, taken by the client's side at the last check

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                cycle = self.cycle
                if cycle is not self._botmon_cycle:  # a request head completed
                    self._botmon_cycle = cycle
                    self._botmon_head_bytes = 0
                elif cycle is None or cycle.response_complete:  # still no complete head
                    self._botmon_head_bytes += len(data)
                    if (self._botmon_head_bytes > limits.max_header_bytes
                            and not self.transport.is_closing()):
                        self.transport.close()  # httptools would buffer it without end

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                if len(self.connections) > limits.max_connections:
                    _warn_cap(limits.max_connections)
                    transport.close()
                    return
                write = transport.write  # type: ignore[attr-defined]

                def counted(data: Any) -> None:
                    self._botmon_sent += len(data)
                    write(data)

                transport.write = counted  # type: ignore[attr-defined]
                self._botmon_arm()

            def connection_lost(self, exc: Exception | None) -> None:
                if self._botmon_timer is not None:
                    self._botmon_timer.cancel()
                    self._botmon_timer = None
                super().connection_lost(exc)

            def _botmon_arm(self) -> None:
                self._botmon_scope = self.scope
                self._botmon_timer = self.loop.call_later(
                    limits.header_timeout_s, self._botmon_check)

            def _botmon_check(self) -> None:
                self._botmon_timer = None
                transport = self.transport
                if transport.is_closing() or transport.get_protocol() is not self:
                    return  # closed, or upgraded to a WebSocket (which pings on its own)
                waiting = transport.get_write_buffer_size()
                if waiting:
                    # A response is still being sent. Its client must take some of it in
                    # every period: one that stopped reading would hold the connection,
                    # its buffers and a place under the cap for ever (a close waits for
                    # the buffer to be written, which never happens then).
                    taken = self._botmon_sent - waiting
                    if taken == self._botmon_taken:
                        logger.info("dashboard: aborting a connection whose client has "
                                    "not read for %g s", limits.header_timeout_s)
                        transport.abort()
                        return
                    self._botmon_taken = taken
                    self._botmon_arm()
                    return
                self._botmon_taken = -1
                idle = self.cycle is None or self.cycle.response_complete
                if idle and self.scope is self._botmon_scope:
                    transport.close()  # no complete request head since the last check
                    return
                self._botmon_arm()

        return LimitedProtocol


def _bounded_close(base: type[asyncio.Protocol], grace_s: float) -> type[Any]:
    """``base`` whose ``shutdown()`` (uvicorn's "close this connection") is followed by
    an abort when the connection is still open ``grace_s`` later: asyncio closes a
    transport only once its buffer is written, which a peer that does not read prevents
    for ever."""

    class BoundedClose(base):  # type: ignore[valid-type,misc]
        _botmon_lost = False
        _botmon_abort: asyncio.TimerHandle | None = None

        def shutdown(self) -> None:
            super().shutdown()
            self._botmon_abort_later()

        def connection_lost(self, exc: Exception | None) -> None:
            self._botmon_lost = True
            if self._botmon_abort is not None:
                self._botmon_abort.cancel()
                self._botmon_abort = None
            super().connection_lost(exc)

        def _botmon_abort_later(self) -> None:
            if not self._botmon_lost and self._botmon_abort is None:
                self._botmon_abort = asyncio.get_running_loop().call_later(
                    grace_s, self._botmon_abort_now)

        def _botmon_abort_now(self) -> None:
            self._botmon_abort = None
            transport = getattr(self, "transport", None)
            if not self._botmon_lost and transport is not None:
                logger.info("dashboard: aborting a connection that did not close in %g s "
                            "(its client stopped reading)", grace_s)
                transport.abort()

    return BoundedClose


_cap_warned = False


def _warn_cap(cap: int) -> None:
    global _cap_warned
    if not _cap_warned:
        _cap_warned = True
        logger.warning("dashboard: %d connections open, closing new ones until some end "
                       "(ServerLimits.max_connections)", cap)


def declare_token_on_reads(app: Any) -> None:
    """Make ``app``'s OpenAPI schema say what :class:`DashboardGuard` enforces: with a
    token, every operation needs it and may answer 401 (not only the mutating ones)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return dict(app.openapi_schema)
        schema: dict[str, Any] = original()
        schemes = schema.get("components", {}).get("securitySchemes", {})
        name = next(iter(schemes), None)
        if name is not None:
            unauthorized = {"description": "Missing or wrong access token", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.setdefault("security", [{name: []}])
                    operation.setdefault("responses", {}).setdefault("401", unauthorized)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
