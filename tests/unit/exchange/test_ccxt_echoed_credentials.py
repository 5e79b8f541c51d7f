"""An error page that echoes the signed request in any layout keeps no credential.

Redaction finds most secrets by the name next to them. A gateway's error page may list
the request's headers in another layout (an HTML table, a PHP ``print_r`` dump,
``name => value``, a JSON list of name/value objects): the signature, a passphrase's
HMAC or a bearer token then stands where no name is beside it, and it is new with every
request. Real ccxt exchanges, instrumented, sign requests to a loopback server that
answers 500 with every received header laid out the way each example draws; nothing
the request sent under a sensitive header name may reach a span, a metric, ccxt's debug
log or the exception the bot gets. Keys set after ``instrument_ccxt`` are registered
before the first request goes out (ccxt logs the response, which may quote them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ccxt
import ccxt.async_support
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_botmon as botmon
from otel_botmon._log_redaction import install_log_redaction
from otel_botmon.demo.serve import local_urls
from otel_botmon.instrument.ccxt import instrument_ccxt, uninstrument_ccxt
from otel_botmon.redaction import is_sensitive_key, redact_text, register_secret
from otel_botmon.testing import capture
from tests.unit.exchange._clients import everything_exported

Layout = Callable[[list[tuple[str, str]]], str]

LAYOUTS: dict[str, Layout] = {
    "html table": lambda items: "<table>" + "".join(
        f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in items) + "</table>",
    "php print_r": lambda items: "Array\n(\n" + "".join(
        f"    [HTTP_{k.upper().replace('-', '_')}] => {v}\n" for k, v in items) + ")",
    "arrow": lambda items: "\n".join(f"{k} -> {v}" for k, v in items),
    "tab": lambda items: "\n".join(f"{k}\t{v}" for k, v in items),
    "pipe": lambda items: "|".join(f"{k}|{v}" for k, v in items),
    "name/value json": lambda items: json.dumps(
        [{"name": k, "value": v} for k, v in items]),
}

# (ccxt id, a raw private method, extra credentials)
EXCHANGES: list[tuple[str, str, dict[str, str]]] = [
    ("okx", "privateGetAccountBalance", {"password": "PWokx9y8X7w6V5u"}),
    ("kucoin", "privateGetAccounts", {"password": "PWkucoin7Gh2Kq9"}),
    ("bybit", "privateGetV5AccountWalletBalance", {}),
    ("bitget", "privateSpotGetV2SpotAccountAssets", {"password": "PWbitget3Fx8Lm"}),
    ("kraken", "privatePostBalance", {}),
    ("gate", "privateSpotGetAccounts", {}),
    ("bitstamp", "privatePostBalance", {}),
]
API_KEY = "AKechoedQ7xLm92PwRt8ZsYv"
# base64, as kraken's and kucoin's signing decode it
API_SECRET = "U0VDZWNob2VkRjNnSDdqS0w5bU5iVmNYejJRd0VyVHlVaU9w"


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    layout: list[Layout]
    sent: list[list[tuple[str, str]]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        items = list(self.headers.items())
        self.sent.append(items)
        body = f"<h1>500 Internal error</h1>{self.layout[0](items)}".encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, list[Layout], list[list[tuple[str, str]]]]]:
    layout: list[Layout] = [LAYOUTS["html table"]]
    sent: list[list[tuple[str, str]]] = []
    handler = type("Echo", (_Echo,), {"layout": layout, "sent": sent})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", layout, sent
    server.shutdown()
    server.server_close()
    thread.join()


def _credentials(items: list[tuple[str, str]]) -> set[str]:
    """What the request sent under a sensitive name, and a bearer scheme's token."""
    found = set()
    for name, value in items:
        if is_sensitive_key(name) and len(value) >= 8:
            found.add(value)
            found.add(value.partition(" ")[2] or value)
    return {v for v in found if len(v) >= 8}


def _leaks(text: str, secrets: set[str]) -> list[str]:
    # the value, and any 12 characters of it (a layout may cut or wrap it)
    return [s[:6] + "..." for s in secrets
            if s in text or any(s[i:i + 12] in text for i in range(0, max(1, len(s) - 11), 4))]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exchange=st.sampled_from(EXCHANGES), layout=st.sampled_from(sorted(LAYOUTS)),
       is_async=st.booleans())
def test_an_echoed_signed_request_leaves_no_credential(
    echo: tuple[str, list[Layout], list[list[tuple[str, str]]]],
    caplog: pytest.LogCaptureFixture, exchange: tuple[str, str, dict[str, str]],
    layout: str, is_async: bool,
) -> None:
    base_url, current, sent = echo
    current[0] = LAYOUTS[layout]
    sent.clear()
    caplog.clear()
    exchange_id, method, extra = exchange
    module: Any = ccxt.async_support if is_async else ccxt
    client = getattr(module, exchange_id)({"apiKey": API_KEY, "secret": API_SECRET, **extra,
                                           "enableRateLimit": False})
    client.urls["api"] = local_urls(client.urls["api"], base_url)
    install_log_redaction()
    raised: list[BaseException] = []
    with capture("test-bot", exchange=exchange_id) as cap, \
            caplog.at_level(logging.DEBUG, logger="ccxt.base.exchange"):
        instrument_ccxt(client)
        try:
            with botmon.trade(symbol="BTCUSDT", side="BUY", quantity=0.001, price=45000.0):
                if is_async:
                    async def call() -> None:
                        try:
                            await getattr(client, method)()
                        finally:
                            await client.close()

                    asyncio.run(call())
                else:
                    getattr(client, method)()
        except ccxt.BaseError as exc:
            raised.append(exc)
        finally:
            uninstrument_ccxt(client)
        exported = everything_exported(cap)
    assert raised and sent, "the exchange was called and failed"
    secrets = _credentials(sent[-1])
    assert secrets, sent[-1]  # it signed: something to look for
    # the answer echoed them (the test shows the case it names)
    assert any(s in current[0](sent[-1]) for s in secrets)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Response:" in logged
    for where, text in (("exported", exported), ("log", logged),
                        ("exception", str(raised[0]))):
        assert not _leaks(text, secrets), (exchange_id, layout, where, _leaks(text, secrets))


def test_keys_set_after_instrumenting_are_registered_before_the_first_request(
    echo: tuple[str, list[Layout], list[list[tuple[str, str]]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    base_url, current, _sent = echo
    current[0] = LAYOUTS["html table"]
    key, secret = "AKlateQ7xLm92PwRt8ZsYvNq", "SEClateF3gH7jKL9mNbVcXz2Qw"
    install_log_redaction()
    with capture("test-bot", exchange="bybit"), \
            caplog.at_level(logging.DEBUG, logger="ccxt.base.exchange"):
        instrument_ccxt()  # every exchange created from now on
        try:
            client = ccxt.bybit({"enableRateLimit": False})
            client.urls["api"] = local_urls(client.urls["api"], base_url)
            client.apiKey, client.secret = key, secret  # set after construction
            with pytest.raises(ccxt.BaseError):
                client.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
        finally:
            uninstrument_ccxt()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Response:" in logged
    assert key not in logged and key[4:16] not in logged


PEM = (
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oEfQ43Hl0ixmoAoGCCqGSM49\n"
    "AwEHoUQDQgAEcNDJ8vsALfG5sxC4ofKDsb2nlCBX9mD0TyYOxi2l4OKC1mvqtsjV\n"
    "fA0nt6FfiBXu1BnN9WeU/H+fbOGqapxbnQ==\n"
    "-----END EC PRIVATE KEY-----\n"
)


@pytest.mark.parametrize("form", [
    PEM, PEM.strip(), PEM.replace("\n", "\r\n"), repr(PEM), json.dumps(PEM),
    "    " + PEM.replace("\n", "\n    "),
])
def test_a_registered_pem_key_is_scrubbed_in_any_line_layout(form: str) -> None:
    register_secret(PEM)
    with capture("test-bot") as cap:
        try:
            with botmon.trade(symbol="BTCUSDT", side="BUY"):
                raise RuntimeError(f"could not load the key: {form}")
        except RuntimeError:
            pass
        exported = everything_exported(cap)
    for line in PEM.splitlines()[1:-1]:
        assert line[:16] not in exported and line[-16:] not in exported, form


def test_only_a_pem_keys_body_lines_are_secrets_of_their_own() -> None:
    encrypted = ("    -----BEGIN RSA PRIVATE KEY-----\n    Proc-Type: 4,ENCRYPTED\n"
                 "    DEK-Info: AES-128-CBC,3F17F5316E2BAC89B2C3A8F7D6C4E1A0\n\n"
                 "    MIIEowIBAAKCAQEAvKz4q1n8T7yYb5ZlGv0S9c2QWbW7m3mVtJz0y1d2k8nq1XQ8\n"
                 "    -----END RSA PRIVATE KEY-----\n")
    register_secret(encrypted)
    for ordinary in ("loading -----BEGIN RSA PRIVATE KEY----- block",
                     "Proc-Type: 4,ENCRYPTED seen", "DEK-Info header"):
        assert redact_text(ordinary) == ordinary
    assert "MIIEowIBAAKCAQEA" not in redact_text(
        "key MIIEowIBAAKCAQEAvKz4q1n8T7yYb5ZlGv0S9c2QWbW7m3mVtJz0y1d2k8nq1XQ8 leaked")
