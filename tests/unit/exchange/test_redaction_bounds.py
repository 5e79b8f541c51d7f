"""Redaction removes every secret and its work is bounded, whatever the input.

Work is counted structurally (names examined, characters scanned for values), never
timed; pytest-timeout only guards against a regression that would hang the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon import _redact_scan
from otel_botmon.instrument.exchange import exchange_call
from otel_botmon.redaction import (
    MAX_TEXT_CHARS,
    REDACTED,
    redact_labels,
    redact_text,
    redact_url,
    register_secret,
)

NAMES = [
    "signature", "apiKey", "api_key", "secret", "token", "passphrase", "password",
    "X-MBX-APIKEY", "OK-ACCESS-SIGN", "KC-API-KEY", "listenKey", "AccessKeyId", "KEY",
    "SIGN", "Authorization", "access_token", "http.request.header.x_mbx_apikey",
]
# A secret: long enough never to be a piece of "REDACTED" or of the text around it;
# ';' and ',' inside it must not cut it short.
SECRETS = st.text(alphabet="0123456789abcdefXYZ_-+/;,~", min_size=12, max_size=60).filter(
    lambda s: s[0] not in ";," and s[-1] not in ";,"
)
# Text around the pair: anything without the secret's characters, so a leftover of the
# secret can only come from the secret.
AROUND = st.text(alphabet=st.characters(blacklist_characters="0123456789abcdefXYZ_-+/;,~"),
                 max_size=200)

STYLES = [
    "{name}={secret}",
    "{name}: {secret}",
    "{name}:{secret}",
    '"{name}": "{secret}"',
    "'{name}': '{secret}'",
    "{name} = {secret}",
    "{name}:\n  {secret}",  # YAML, a pretty printer: the value on the next line
    "passphrase:\n  {name}: {secret}",  # an empty value, then a pair on the next line
    "X-API-KEY: \r\n{name}={secret}",
    "{{'password': \n '{name}': '{secret}'}}",
    "{name}:\u00a0{secret}",  # a no-break space
    "{name} =\r\n\t{secret}",
    "https://api.example.com/v1/x?symbol=BTC&{name}={secret}&recvWindow=5000",
    "Authorization: Bearer {secret}",
    "redirect=https%3A%2F%2Fh%2Fp%3F{name}%3D{secret}%26x%3D1",
    "r=https%253A%252F%252Fh%253F{name}%253D{secret}%2526x%253D1",
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), secret=SECRETS, style=st.sampled_from(STYLES),
       before=AROUND, after=AROUND)
def test_a_named_secret_never_survives_redact_text(
    name: str, secret: str, style: str, before: str, after: str
) -> None:
    value = quote(secret, safe="") if "%3" in style or "%25" in style else secret
    pair = style.format(name=name, secret=value)
    text = f"{before} {pair} {after}"
    redacted = redact_text(text)
    assert value not in redacted
    assert REDACTED in redacted


@settings(max_examples=200)
@given(name=st.sampled_from(NAMES), secret=SECRETS)
def test_a_named_secret_never_survives_redact_url(name: str, secret: str) -> None:
    value = quote(secret, safe="")
    assert value not in redact_url(f"https://h/p?a=1&{name}={value}#frag")
    nested = f"https://h/cb?redirect=https%3A%2F%2Fx%2Fy%3F{name}%3D{value}%26b%3D2&c=3"
    assert value not in redact_url(nested)


def test_the_names_of_issue_13_are_sensitive() -> None:
    assert redact_text("GET /api/v3/userDataStream?listenKey=pqia91ma19a5s61cv6a81va6") == (
        f"GET /api/v3/userDataStream?listenKey={REDACTED}")
    assert "e2xxxxxx" not in redact_url(
        "https://api.huobi.pro/v1/order/orders?AccessKeyId=e2xxxxxx-99xxxxxx&Signature=4F65x")
    assert redact_text("{'KEY': 'gate-key-1', 'SIGN': 'abc'}") == (
        f"{{'KEY': '{REDACTED}', 'SIGN': '{REDACTED}'}}")
    assert redact_text("signature=abc;def123 rest") == f"signature={REDACTED} rest"
    assert redact_text("x=https%3A%2F%2Fh%3Fsignature%3Ddeadbeef%26y%3D1") == (
        f"x=https%3A%2F%2Fh%3Fsignature%3D{REDACTED}%26y%3D1")


def test_short_names_match_only_whole() -> None:
    assert redact_text("monkey=1 design=2 key=3") == f"monkey=1 design=2 key={REDACTED}"


def test_labels_are_redacted_by_name_and_by_value() -> None:
    assert redact_labels({"api_key": "k-123456", "note": "token=abc", "symbol": "BTC"}) == {
        "api_key": REDACTED, "note": f"token={REDACTED}", "symbol": "BTC",
    }


@settings(max_examples=100)
@given(cut=st.integers(min_value=-40, max_value=40))
def test_a_registered_secret_cut_by_truncation_leaves_no_piece(cut: int) -> None:
    secret = "QWERTYUIOPASDFGHJKLZXCVBNM1234567890qwertyuiop"
    register_secret(secret)
    text = "." * (MAX_TEXT_CHARS + cut) + secret + "." * 100
    redacted = redact_text(text)
    assert secret[:4] not in redacted
    assert len(redacted) < MAX_TEXT_CHARS + 100


# --- bounded work ------------------------------------------------------------------------

class Work:
    """Counts the scanner's work: names examined and characters read for values."""

    def __init__(self) -> None:
        self.names = 0
        self.value_chars = 0


def count_work(monkeypatch: pytest.MonkeyPatch) -> Work:
    counted = Work()
    key_before = _redact_scan._key_before
    value_span = _redact_scan._value_span

    def counting_key_before(text: str, sep: int, floor: int) -> str:
        counted.names += 1
        return key_before(text, sep, floor)

    def counting_value_span(text: str, start: int, encoded: bool,
                            sensitive: Callable[[str], bool]) -> tuple[int, int]:
        found = value_span(text, start, encoded, sensitive)
        counted.value_chars += found[1] - start
        return found

    monkeypatch.setattr(_redact_scan, "_key_before", counting_key_before)
    monkeypatch.setattr(_redact_scan, "_value_span", counting_value_span)
    return counted


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    return count_work(monkeypatch)


ADVERSARIAL_UNITS = ["0123456789abcdef", "a:", "=", "a=", "%3D", "token=", " :", "k%3D",
                     '"a":"', "x://y@", "signature=signature=", "aaaa", "sign:\n",
                     "token= \n\u00a0", "\n", '{"op":"auth","args":[', '"args":',
                     "'op': 'authKey', 'params': ['x', ",
                     "('sign', ", "[(b'a', ", '"sign": [', '"sign": {', '\\"sign\\": \\"']


@pytest.mark.timeout(300)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit=st.sampled_from(ADVERSARIAL_UNITS),
       size=st.sampled_from([1_000, 20_000, 1_000_000]))
def test_adversarial_text_costs_a_bounded_amount_of_work(unit: str, size: int) -> None:
    text = (unit * (size // len(unit) + 1))[:size]
    with pytest.MonkeyPatch.context() as monkeypatch:
        counted = count_work(monkeypatch)
        redacted = redact_text(text)
    # names examined: one per separator, never more than the budget
    assert counted.names <= min(text.count("=") + text.count(":") + text.count("%"),
                                _redact_scan.MAX_SEPARATORS)
    # each character is read for a value at most once
    assert counted.value_chars <= min(size, MAX_TEXT_CHARS)
    # at most the cut text with each character turned into REDACTED, plus the notes
    assert len(redacted) <= len(REDACTED) * MAX_TEXT_CHARS + 128


def _exception_span(telemetry: Any, message: str) -> Any:
    @exchange_call(exchange="binance", endpoint="create_order")
    def place() -> None:
        raise RuntimeError(message)

    with pytest.raises(RuntimeError):
        place()
    (span,) = [s for s in telemetry.spans() if s.name == "exchange create_order"]
    return span


@pytest.mark.timeout(120)
@pytest.mark.parametrize("unit", ["0x08c379a0" + "00" * 40, "a:", "=", "token="])
def test_a_20_kb_exception_message_is_cut_and_scanned_within_the_span_budget(
    work: Work, telemetry: Any, unit: str
) -> None:
    message = "execution reverted: " + unit * (20_000 // len(unit))
    span = _exception_span(telemetry, message)
    (event,) = span.events
    exported = str(event.attributes["exception.message"])
    assert len(exported) <= MAX_TEXT_CHARS + 64
    assert exported.endswith("chars not shown]")
    # message, stack trace and status description together: one span budget
    assert work.names <= _redact_scan.MAX_SEPARATORS
    assert work.value_chars <= _redact_scan.MAX_SPAN_CHARS


def test_the_same_text_is_redacted_once(work: Work) -> None:
    text = "failed: " + "k=v " * 50 + "token=abc"
    first = redact_text(text)
    examined = work.names
    assert redact_text(text) == first
    assert redact_text(first) == first
    assert work.names == examined



@pytest.mark.parametrize(("text", "secret"), [
    ("bot_token:\n  1234567890:AAHxyzTelegramBotToken", "AAHxyzTelegramBotToken"),
    ("api_secret:\n  dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleQ==", "dGVzdGtleXRlc3Rr"),
    ("authorization:\n  user:pass9secret", "pass9secret"),
    ("passphrase:\n  my=pass9secret", "pass9secret"),
    ("token:\r\n  abc:def9secret", "def9secret"),
    (" signature =\r\n\t0a1b2c3d4e5f :", "0a1b2c3d4e5f"),
    # an empty value, then a sensitive pair of its own on the next line
    ("passphrase:\nsecret: S2secret9", "S2secret9"),
    ("X-API-KEY: \nAuthorization: Bearer S2token9", "S2token9"),
    ("{'password': \n 'secret': 'S2secret9'}", "S2secret9"),
])
def test_a_value_on_the_next_line_is_redacted_even_when_it_looks_like_a_pair(
    text: str, secret: str,
) -> None:
    assert secret not in redact_text(text)
