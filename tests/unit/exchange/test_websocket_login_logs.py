"""WebSocket logins that send the key and the signature positionally (no name for each):
the frame the client libraries log at DEBUG must not show them.

Bybit and BitMEX log in with ``{"op": "auth" | "authKeyExpires", "args": [key, expires,
signature]}``, Phemex with ``{"method": "user.auth", "params": ["API", key, signature,
expiry]}``. The real ``websockets`` client (``websockets.client`` logger) and
websocket-client with tracing on (``websocket``, what pybit uses) send each frame to a
real server on loopback and log it; ``configure()``'s log filter is on both loggers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_botmon._log_redaction import install_log_redaction
from otel_botmon.redaction import REDACTED, redact_text

sync_server = pytest.importorskip("websockets.sync.server")
sync_client = pytest.importorskip("websockets.sync.client")

KEY = "WsLoginKEYq7Xv3Lm9Pw2Rt8"
SIGNATURE = "9f3a0c7e5b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a"

LOGINS: dict[str, Callable[[], dict[str, Any]]] = {
    "bybit": lambda: {"op": "auth", "args": [KEY, 1_700_000_000_000, SIGNATURE]},
    "bitmex": lambda: {"op": "authKeyExpires", "args": [KEY, 1_700_000_000, SIGNATURE]},
    "phemex": lambda: {"id": 1, "method": "user.auth",
                       "params": ["API", KEY, SIGNATURE, 1_700_000_000]},
}


@pytest.fixture
def ws_url() -> Iterator[str]:
    received: list[str] = []

    def handler(connection: Any) -> None:
        for message in connection:
            received.append(message)
            connection.send(json.dumps({"success": False, "ret_msg": "invalid signature"}))

    server = sync_server.serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v5/private"
    server.shutdown()
    thread.join(10)


def _logged(caplog: pytest.LogCaptureFixture, logger: str) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == logger)


def _shows_a_credential(logged: str) -> bool:
    # websockets shortens a long frame in the middle ('["WsLoginKEYq7...4e6b8d0f2a"]'):
    # any 8 characters of either end give a credential away
    return any(part in logged for part in (KEY[:8], KEY[-8:], SIGNATURE[:8], SIGNATURE[-8:]))


@pytest.mark.parametrize("venue", sorted(LOGINS))
def test_the_websockets_client_logs_a_login_frame_without_its_credentials(
    venue: str, ws_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    with sync_client.connect(ws_url) as ws:
        ws.send(json.dumps(LOGINS[venue]()))
        assert "invalid signature" in str(ws.recv(timeout=10))
    logged = _logged(caplog, "websockets.client")
    assert "> TEXT" in logged and REDACTED in logged  # the frame was logged, redacted
    assert not _shows_a_credential(logged), logged


@pytest.mark.parametrize("venue", sorted(LOGINS))
def test_websocket_client_traces_a_login_frame_without_its_credentials(
    venue: str, ws_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    websocket = pytest.importorskip("websocket")
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    websocket.enableTrace(True, handler=logging.NullHandler())
    try:
        ws = websocket.create_connection(ws_url, timeout=10)
        try:
            ws.send(json.dumps(LOGINS[venue]()))
            assert "invalid signature" in ws.recv()
        finally:
            ws.close()
    finally:
        websocket.enableTrace(False)
    logged = _logged(caplog, "websocket")
    assert "++Sent decoded" in logged and REDACTED in logged
    assert not _shows_a_credential(logged), logged


def test_a_subscription_keeps_its_args() -> None:
    frame = json.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
    assert redact_text(frame) == frame
    # in a text that also holds a login, every "args" list goes (the scan does not tell
    # the objects apart): safe, if more than needed
    login = json.dumps(LOGINS["bybit"]())
    assert redact_text(f"{login} then {frame}").count(REDACTED) == 2


def test_a_login_frame_inside_a_json_string_is_redacted() -> None:
    # a frame kept in a structured log or an error payload: its quotes are escaped
    text = json.dumps({"frame": json.dumps(LOGINS["bybit"]())})
    assert not _shows_a_credential(redact_text(text))
