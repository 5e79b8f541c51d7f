"""Secrets under a sensitive name in structured text: nested JSON strings (escaped
quotes), bytes literals, list or object values (a wallet signature {r, s, v}), and
(name, value) pairs of header lists."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.exchanges import all_exact_secret_names, all_secret_names
from otel_botmon.redaction import redact_text

NAMES = sorted(all_secret_names() | all_exact_secret_names() | {"sign", "apiKey", "signature"})
SECRET = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-",
                 min_size=8, max_size=64)


def _forms(name: str, secret: str) -> list[str]:
    ordinary = {"symbol": "BTCUSDT", name: secret}
    return [
        # a request body (JSON) kept as a string inside a JSON error or log line
        json.dumps({"code": 400, "body": json.dumps(ordinary)}),
        json.dumps({"body": json.dumps(ordinary, separators=(",", ":"))}),
        # header or body dicts of bytes, as Python prints them
        repr({b"symbol": b"BTCUSDT", name.encode(): secret.encode()}),
        # a structured value: a list, an object (Hyperliquid's {"signature": {r, s, v}})
        json.dumps({"symbol": "BTCUSDT", name: [secret, 27]}),
        json.dumps({"symbol": "BTCUSDT", name: {"r": "0x" + secret, "s": secret, "v": 27},
                    "nonce": 1}),
        repr({"symbol": "BTCUSDT", name: ["a", {"s": secret}]}),
        # header lists, as Python prints them (aiohttp's raw_headers, list(h.items()))
        # and as JSON writes them
        repr([("symbol", "BTCUSDT"), (name, secret)]),
        repr(((b"symbol", b"BTCUSDT"), (name.encode(), secret.encode()))),
        json.dumps([["symbol", "BTCUSDT"], [name, secret]]),
        json.dumps([["symbol", "BTCUSDT"], [name, secret]], separators=(",", ":")),
        # a header list inside a JSON string (escaped quotes), and brackets inside a
        # quoted element of a structured value (text, not structure)
        json.dumps({"headers": json.dumps([["symbol", "BTCUSDT"], [name, secret]])}),
        json.dumps({"symbol": "BTCUSDT", name: ["a]b}", secret]}),
        repr({"symbol": "BTCUSDT", name: ["x']", secret]}),
    ]


@given(name=st.sampled_from(NAMES), secret=SECRET)
def test_secret_under_a_sensitive_name_in_structured_text_is_redacted(
        name: str, secret: str) -> None:
    for text in _forms(name, secret):
        out = redact_text(text)
        assert secret not in out, (text, out)
        assert "BTCUSDT" in out, (text, out)


def test_what_follows_a_structured_value_stays_readable() -> None:
    text = '{"signature": {"r": "0xab", "s": "0xcd", "v": 27}, "nonce": 17, "symbol": "ETH"}'
    assert redact_text(text) == '{"signature": REDACTED, "nonce": 17, "symbol": "ETH"}'


def test_brackets_in_quoted_strings_do_not_end_a_structured_value() -> None:
    assert redact_text('{"signature": ["a]b", "SECRETPART"], "n": 1}') \
        == '{"signature": REDACTED, "n": 1}'
    assert redact_text('{"sig": ["a\\"]", "S2"]}') == '{"sig": REDACTED}'


def test_an_unclosed_structured_value_is_redacted_to_the_end() -> None:
    assert redact_text('x=1 "sig": [abc, "def"') == 'x=1 "sig": REDACTED'


def test_brackets_cost_linear_time() -> None:
    for text in ('"sign": ' + "[" * 16_000, ('"sign": [' + "]" * 4) * 3_000,
                 ('\\"sign\\": \\"' + "a") * 1_500, '"sign": [' + '"\\' * 8_000,
                 '"sign": [' + "'\"" * 8_000):
        start = time.perf_counter()
        redact_text(text)
        assert time.perf_counter() - start < 0.5


def test_a_header_list_keeps_its_ordinary_headers() -> None:
    text = repr([("Accept", "*/*"), ("X-MBX-APIKEY", "k3y"), ("X-Request-Id", "r1")])
    assert redact_text(text) == (
        "[('Accept', '*/*'), ('X-MBX-APIKEY', 'REDACTED'), ('X-Request-Id', 'r1')]")


def test_a_header_list_attribute_is_redacted_on_the_span() -> None:
    from otel_botmon.redaction import redact_attributes

    attributes = {"bot.request.headers": "[('OK-ACCESS-SIGN', 's1gnature')]"}
    assert redact_attributes(attributes) == {
        "bot.request.headers": "[('OK-ACCESS-SIGN', 'REDACTED')]"}


# ccxt.pro's WebSocket login messages name their signatures so (bitfinex, coinbase,
# krakenfutures); an exchange's error may quote the message back.
WS_LOGIN_NAMES = ["authSig", "jwt", "signed_challenge"]


@given(name=st.sampled_from(WS_LOGIN_NAMES), secret=SECRET)
def test_websocket_login_fields_are_sensitive(name: str, secret: str) -> None:
    message = json.dumps({"event": "auth", name: secret, "symbol": "BTCUSDT"})
    out = redact_text(f"AuthenticationError: login refused: {message}")
    assert secret not in out
    assert "BTCUSDT" in out
