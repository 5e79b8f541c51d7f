"""Every ccxt exchange's signed request, redacted: no key, secret or signature survives.

Each exchange in ``ccxt.exchanges`` signs a few private requests offline (fake
credentials, a frozen clock; see ``_ccxt_signing``). What otel_botmon records of a
request is then checked for every secret-bearing value (the credentials, and whatever
changes when only the secret changes) and for its first 8 characters:

* ``url.full``: :func:`redact_url` (the ccxt, requests, aiohttp and httpx hooks);
* captured request headers, ``http.request.header.<name>`` (the contrib
  instrumentations with ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``),
  through :func:`redact_attributes`, and :func:`redact_headers`;
* ccxt's own debug line ``"%s %s, Request: %s %s" % (method, url, headers, body)``,
  through :func:`redact_text` (the log filter ``configure()`` puts on
  ``ccxt.base.exchange``).

No secret is registered: the names alone must do it (a requests or httpx client does
not register the exchange's keys as ``instrument_ccxt`` does). Ordinary fields (symbol,
side, price, quantity, order ids) must survive.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import otel_botmon as botmon
from otel_botmon._log_redaction import install_log_redaction
from otel_botmon.demo.serve import local_urls
from otel_botmon.instrument.ccxt import instrument_ccxt, uninstrument_ccxt
from otel_botmon.redaction import (
    is_sensitive_key,
    redact_attributes,
    redact_headers,
    redact_text,
    redact_url,
)
from tests.unit.exchange import _ccxt_signing as signing
from tests.unit.exchange._clients import everything_exported

# sign() of these carries no credential offline: the exchange signs the action in the
# calling method (a wallet signature in the body), or needs a session token first.
NO_OFFLINE_SIGNATURE = frozenset({
    "dydx", "hyperliquid", "nado", "pacifica", "polymarket",  # no credential in sign()
    "grvt", "paradex", "lighter",  # a session (signIn / authenticateRest / auth token)
})


def _records(signed: signing.Signed) -> dict[str, tuple[str, str]]:
    """What is recorded of the request: (raw, redacted) by where."""
    # ccxt: logger.debug("%s %s, Request: %s %s", method, url, headers, body)
    line = f"{signed.method} {signed.url}, Request: {signed.headers} {signed.body}"
    attributes = signing.header_attributes(signed.headers)
    return {
        "url.full": (signed.url, redact_url(signed.url)),
        "captured headers": (repr(attributes), repr(redact_attributes(attributes))),
        "redact_headers": (repr(signed.headers), repr(redact_headers(signed.headers))),
        "ccxt debug log": (line, redact_text(line)),
    }


@pytest.mark.parametrize("exchange_id", ccxt.exchanges)
def test_signed_private_request_keeps_no_key_secret_or_signature(exchange_id: str) -> None:
    found, why = signing.sign_private(exchange_id)
    if not found:
        assert exchange_id in NO_OFFLINE_SIGNATURE, why
        pytest.skip(f"{exchange_id}: {why}")
    assert exchange_id not in NO_OFFLINE_SIGNATURE  # it signs now: check it
    for signed in found:
        for where, (raw, redacted) in _records(signed).items():
            leaked = signing.leaks(redacted, signed.secrets)
            assert not leaked, (exchange_id, signed.entry, where, leaked, redacted)
            lost = [name for name, value in signing.ORDINARY.items()
                    if value in raw and value not in redacted]
            assert not lost, (exchange_id, signed.entry, where, lost, redacted)


def test_almost_every_ccxt_exchange_is_signed_offline() -> None:
    """The harness keeps covering ccxt: only the known few cannot sign offline."""
    unsigned = {name for name in ccxt.exchanges if not signing.sign_private(name, 1)[0]}
    assert unsigned <= NO_OFFLINE_SIGNATURE
    assert len(ccxt.exchanges) - len(unsigned) >= 90


_WORD = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                min_size=1, max_size=12)


@given(prefix=st.lists(_WORD, min_size=1, max_size=3), sep=st.sampled_from("-_."),
       word=st.sampled_from(["key", "KEY", "Key", "sign", "SIGN", "sig", "MAC", "hmac"]))
def test_a_name_ending_in_a_key_or_signature_word_is_sensitive(
        prefix: list[str], sep: str, word: str) -> None:
    name = sep.join([*prefix, word])
    assert is_sensitive_key(name)
    assert redact_headers({name: "v4lue-of-the-header"}) == {name: "REDACTED"}


@given(name=st.sampled_from(["symbol", "side", "price", "quantity", "timestamp", "orderId",
                             "clientOrderId", "client_order_id", "orderLinkId", "monkey",
                             "design", "imac", "X-Request-Id", "recvWindow", "type"]),
       sep=st.sampled_from(["", "-", "_", "."]), head=st.sampled_from(["", "x", "order"]))
def test_ordinary_field_names_stay_readable(name: str, sep: str, head: str) -> None:
    full = f"{head}{sep}{name}" if head else name
    assert not is_sensitive_key(full)
    text = f"{full}=BTCUSDT&{full}: 45123.5"
    assert redact_text(text) == text


# End to end: the real ccxt, instrumented, against a loopback server, every header
# captured onto the requests span (the worst case) and ccxt's debug log on.


class _Answer(BaseHTTPRequestHandler):
    received: list[str]  # every request as text: line, headers, body

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode("latin-1")
        self.received.append(" ".join((self.path, *self.headers.values(), sent)))
        answer = json.dumps({"code": 0, "result": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    handler = type("Answer", (_Answer,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def instrumented(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    botmon.instrument_requests()
    yield
    botmon.uninstrument_requests()
    uninstrument_ccxt()


def _send(exchange: Any, entry: Any) -> None:
    try:
        exchange.request(entry.path, entry.api, entry.method,
                         signing._params(entry.path, entry.method))
    except ccxt.BaseError:
        pass  # the loopback's answer need not please the exchange: the request was sent


@pytest.mark.parametrize("exchange_id", ["btse", "mercado", "cryptocom"])
def test_instrumented_ccxt_exports_no_credential_or_signature(
        exchange_id: str, loopback: tuple[str, list[str]], instrumented: None,
        telemetry: Any, caplog: pytest.LogCaptureFixture) -> None:
    base_url, received = loopback
    _fmt, secret_a, secret_b = signing._secrets()[0]
    entry = signing.private_entries(getattr(ccxt, exchange_id))[0]
    ex_a, ex_b = signing.make(exchange_id, secret_a), signing.make(exchange_id, secret_b)
    for exchange in (ex_a, ex_b):
        exchange.urls["api"] = local_urls(exchange.urls["api"], base_url)
    _send(ex_b, entry)  # not instrumented: exports nothing, shows what the secret changes

    install_log_redaction()
    caplog.set_level(logging.DEBUG, logger="ccxt.base.exchange")
    instrument_ccxt(ex_a)
    _send(ex_a, entry)
    assert len(received) == 2
    # what the server got with secret A and not with secret B: the signature
    signature = signing._tokens(received[1]) - signing._tokens(received[0])
    assert signature
    secrets = {k: v for k, v in signing.credentials(exchange_id, secret_a).items()
               if k in ("apiKey", "secret", "password", "token")}
    secrets.update((f"signed#{i}", t) for i, t in enumerate(sorted(signature)))
    assert any(v in received[1] for v in secrets.values())  # the credentials were sent

    exported = everything_exported(telemetry)
    assert "http.request.header." in exported  # every header was captured
    assert not signing.leaks(exported, secrets), exported
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Request:" in logged
    assert not signing.leaks(logged, secrets), logged
    assert "BTCUSDT" in logged  # ordinary fields stay readable
