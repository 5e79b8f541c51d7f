"""python-binance's verbose log: every signed request (URL, X-MBX-APIKEY header, and
the body, a list of (name, value) pairs with the signature last) at DEBUG on
``binance.base_client``. ``configure()``'s log filter covers that logger."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from otel_botmon._log_redaction import install_log_redaction

pytest.importorskip("binance.client")

API_KEY = "PyBinKEYq7Xv3Lm9Pw2Rt8ZsAbCdEfGh"
API_SECRET = "PyBinSECRETa8Zs7Qw6Er5Ty4Ui3Op2"


class _Refuse(BaseHTTPRequestHandler):
    received: list[str]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(f"{self.path} {self.rfile.read(length).decode()}")
        answer = json.dumps({"code": -2015, "msg": "Invalid API-key."}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def binance_api() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Refuse", (_Refuse,),
                                                        {"received": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_verbose_python_binance_logs_no_key_or_signature(
        binance_api: tuple[str, list[str]], caplog: pytest.LogCaptureFixture) -> None:
    from binance.client import Client

    url, received = binance_api
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    client = Client(API_KEY, API_SECRET, ping=False, verbose=True)
    client.API_URL = url
    for call in (client.get_account,
                 lambda: client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                             timeInForce="GTC", quantity="0.001",
                                             price="45000")):
        with pytest.raises(Exception, match="Invalid API-key"):
            call()
    signatures = {s for r in received for s in re.findall(r"signature=([0-9a-f]{64})", r)}
    assert len(signatures) == 2
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if r.name == "binance.base_client")
    assert "RequestBody" in logged and "BTCUSDT" in logged
    for secret in (API_KEY, API_SECRET, *signatures):
        assert secret[:8] not in logged, logged
