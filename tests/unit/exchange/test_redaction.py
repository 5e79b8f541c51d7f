"""otel_botmon.redaction: secrets out of URLs, headers, text, attributes and spans."""

from __future__ import annotations

import random
import string
import threading
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from otel_botmon import redaction
from otel_botmon.redaction import (
    REDACTED,
    RedactingSpanProcessor,
    add_sensitive_keys,
    is_sensitive_key,
    redact_attributes,
    redact_headers,
    redact_span,
    redact_text,
    redact_url,
    register_secret,
)

SENSITIVE = [
    "signature", "apiKey", "api_key", "API-KEY", "secret", "token", "passphrase", "password",
    "X-MBX-APIKEY", "x-mbx-apikey", "OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-PASSPHRASE",
    "KC-API-KEY", "KC-API-SIGN", "KC-API-PASSPHRASE", "access_token", "client_secret",
    "Authorization", "http.request.header.x_mbx_apikey", "http.request.header.sign",
]
NOT_SENSITIVE = [
    "symbol", "side", "quantity", "timestamp", "recvWindow", "design", "X-MBX-USED-WEIGHT-1M",
    "Content-Type", "url.full", "exchange.endpoint", "", "tokens_used",
]


@pytest.mark.parametrize("name", SENSITIVE)
def test_sensitive_names_are_recognized_case_insensitively(name: str) -> None:
    assert is_sensitive_key(name)


@pytest.mark.parametrize("name", NOT_SENSITIVE)
def test_ordinary_names_are_not_sensitive(name: str) -> None:
    assert not is_sensitive_key(name)


def test_non_string_name_is_not_sensitive() -> None:
    assert not is_sensitive_key(42)  # type: ignore[arg-type]


def test_signed_binance_url_keeps_everything_but_the_secrets() -> None:
    url = ("https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000"
           "&signature=3f9a0c&apiKey=abc")
    assert redact_url(url) == (
        "https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&timestamp=1700000000"
        "&signature=REDACTED&apiKey=REDACTED"
    )


def test_url_credentials_and_fragment_tokens_are_redacted() -> None:
    url = "https://bob:hunter2@example.com/cb#access_token=xyz&state=1"
    assert redact_url(url) == "https://REDACTED:REDACTED@example.com/cb#access_token=REDACTED&state=1"


def test_percent_encoded_parameter_name_is_still_recognized() -> None:
    assert redact_url("https://h/p?api%5Fkey=k1&x=1") == "https://h/p?api%5Fkey=REDACTED&x=1"


def test_redact_url_accepts_httpx_url_and_bytes() -> None:
    assert redact_url(httpx.URL("http://h/p?token=t")) == "http://h/p?token=REDACTED"
    assert redact_url(b"http://h/p?token=t") == "http://h/p?token=REDACTED"


def test_url_without_secrets_is_unchanged() -> None:
    url = "https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT"
    assert redact_url(url) == url


def test_extra_sensitive_keys_extend_the_list() -> None:
    assert redact_url("https://h/p?nonce_seed=s") == "https://h/p?nonce_seed=s"
    add_sensitive_keys("Nonce-Seed")
    assert redact_url("https://h/p?nonce_seed=s") == "https://h/p?nonce_seed=REDACTED"
    assert is_sensitive_key("NONCE_SEED")


def test_add_sensitive_keys_rejects_bad_names() -> None:
    with pytest.raises(TypeError, match="expected str"):
        add_sensitive_keys(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        add_sensitive_keys("--")


def test_headers_are_redacted_by_name_and_keep_their_spelling() -> None:
    headers = httpx.Headers({"X-MBX-APIKEY": "k", "Content-Type": "application/json",
                             "OK-ACCESS-SIGN": "s", "Accept": "a"})
    assert redact_headers(headers) == {
        "x-mbx-apikey": REDACTED, "content-type": "application/json",
        "ok-access-sign": REDACTED, "accept": "a",
    }
    assert redact_headers({"KC-API-PASSPHRASE": "p", "X": "y"}) == {
        "KC-API-PASSPHRASE": REDACTED, "X": "y",
    }
    assert redact_headers([(b"Authorization", b"Bearer t"), (b"Host", b"h")]) == {
        "Authorization": REDACTED, "Host": "h",
    }


def test_redact_headers_never_raises_on_garbage() -> None:
    assert redact_headers(None) == {}
    assert redact_headers(17) == {}
    assert redact_headers(["not-a-pair"]) == {}


def test_error_message_with_signed_url_is_scrubbed() -> None:
    message = ("Client error '400 Bad Request' for url "
               "'https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=deadbeef'")
    assert redact_text(message) == (
        "Client error '400 Bad Request' for url "
        "'https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=REDACTED'"
    )


def test_header_and_json_style_pairs_are_scrubbed() -> None:
    assert redact_text("X-MBX-APIKEY: abc123") == "X-MBX-APIKEY: REDACTED"
    assert redact_text("Authorization: Bearer tok") == "Authorization: Bearer REDACTED"
    assert redact_text('{"apiKey": "abc", "symbol": "BTC"}') == (
        '{"apiKey": "REDACTED", "symbol": "BTC"}'
    )
    assert redact_text("{'secret': 'zz'}") == "{'secret': 'REDACTED'}"
    assert redact_text("connect to smtp://me:pw@mail.example.com failed") == (
        "connect to smtp://REDACTED:REDACTED@mail.example.com failed"
    )


def test_ordinary_text_is_unchanged() -> None:
    text = "order 42 filled at 12:30: price=45000 qty=0.1"
    assert redact_text(text) == text


def test_registered_secret_is_scrubbed_anywhere_including_url_encoded() -> None:
    register_secret("s3cr3t/value+x")
    assert redact_text("boom s3cr3t/value+x boom") == f"boom {REDACTED} boom"
    assert redact_text("q=s3cr3t%2Fvalue%2Bx") == f"q={REDACTED}"
    assert redact_url("https://hooks.example.com/s3cr3t/value+x") == f"https://hooks.example.com/{REDACTED}"


def test_register_secret_rejects_short_and_non_string_values() -> None:
    with pytest.raises(ValueError, match="shorter than 4"):
        register_secret("abc")
    with pytest.raises(TypeError, match="expected a str"):
        register_secret(1234)  # type: ignore[arg-type]


def test_forget_secrets_clears_registrations() -> None:
    register_secret("topsecretvalue")
    add_sensitive_keys("custom_field")
    redaction.forget_secrets()
    assert redact_text("topsecretvalue custom_field=1") == "topsecretvalue custom_field=1"


def test_attributes_redacted_by_key_and_value() -> None:
    attrs = {
        "http.url": "https://h/p?signature=abc&symbol=X",
        "http.request.header.x_mbx_apikey": ("key",),
        "exception.message": "bad signature=abc",
        "http.status_code": 400,
        "trading.symbol": "BTCUSDT",
    }
    assert redact_attributes(attrs) == {
        "http.url": "https://h/p?signature=REDACTED&symbol=X",
        "http.request.header.x_mbx_apikey": (REDACTED,),
        "exception.message": "bad signature=REDACTED",
        "http.status_code": 400,
        "trading.symbol": "BTCUSDT",
    }
    assert redact_attributes(None) == {}


def _redacting_provider() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    return exporter, provider


def test_redacting_processor_scrubs_name_attributes_events_and_status() -> None:
    exporter, provider = _redacting_provider()
    tracer = provider.get_tracer("t")
    span = tracer.start_span("GET /p?token=abc", attributes={"url.full": "http://h/?apiKey=k"})
    try:
        raise httpx.HTTPError("failed for url 'http://h/p?signature=deadbeef'")
    except httpx.HTTPError as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"HTTPError: {exc}"))
    span.end()

    (exported,) = exporter.get_finished_spans()
    assert exported.name == "GET /p?token=REDACTED"
    assert exported.attributes == {"url.full": "http://h/?apiKey=REDACTED"}
    (event,) = exported.events
    assert event.attributes is not None
    assert event.attributes["exception.message"] == "failed for url 'http://h/p?signature=REDACTED'"
    assert "deadbeef" not in str(event.attributes["exception.stacktrace"])
    assert exported.status.description == "HTTPError: failed for url 'http://h/p?signature=REDACTED'"
    assert exported.context == span.get_span_context()


def test_span_without_secrets_is_passed_through_as_is() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("trade BTCUSDT", attributes={"a": 1}):
        pass
    (span,) = exporter.get_finished_spans()
    assert redact_span(span) is span


def test_redacting_processor_forwards_flush_and_shutdown() -> None:
    exporter = InMemorySpanExporter()
    inner = SimpleSpanProcessor(exporter)
    processor = RedactingSpanProcessor(inner)
    assert processor.delegate is inner
    assert processor.force_flush(1000) is True
    processor.shutdown()
    assert exporter._stopped  # the exporter behind it was shut down too


def test_span_is_dropped_not_leaked_when_redaction_fails(
    monkeypatch: pytest.MonkeyPatch, telemetry: Any
) -> None:
    def broken(span: object, **options: object) -> object:
        raise RuntimeError("redaction bug")

    monkeypatch.setattr(redaction, "redact_span", broken)
    exporter, provider = _redacting_provider()
    provider.get_tracer("t").start_span("GET", attributes={"url.full": "http://h/?token=t"}).end()
    assert exporter.get_finished_spans() == ()
    errors = telemetry.metric_points("botmon.internal.errors")
    assert [(dict(p.attributes), p.value) for p in errors] == [
        ({"botmon.component": "redaction", "error.type": "RuntimeError"}, 1)
    ]


def _random_signed_urls(count: int) -> list[tuple[str, str]]:
    """(secret, url) pairs: a secret parameter among ordinary ones, in random places.

    A fixed seed keeps the cases identical on every run (no flaky property test).
    """
    rng = random.Random(20261125)
    plain_keys = ["symbol", "side", "type", "quantity", "price", "timestamp", "recvWindow"]
    secret_keys = ["signature", "apiKey", "api_key", "SECRET", "passphrase", "Token"]
    alphabet = string.ascii_letters + string.digits
    cases = []
    for _ in range(count):
        secret = "".join(rng.choices(alphabet, k=rng.randint(12, 40)))
        pairs = [(k, "".join(rng.choices(string.ascii_lowercase, k=4)))
                 for k in rng.sample(plain_keys, rng.randint(0, 5))]
        pairs.insert(rng.randint(0, len(pairs)), (rng.choice(secret_keys), secret))
        query = "&".join(f"{k}={v}" for k, v in pairs)
        cases.append((secret, f"https://api.example.com/v1/x?{query}"))
    return cases


def test_no_secret_survives_redact_url_or_redact_text() -> None:
    for secret, url in _random_signed_urls(300):
        assert secret not in redact_url(url), url
        assert secret not in redact_text(f"request to {url} failed"), url


def test_redaction_never_raises_on_arbitrary_text() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 120)))
        assert isinstance(redact_url(text), str)
        assert isinstance(redact_text(text), str)


def test_redacting_exporter_redacts_on_the_exporting_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_botmon.redaction import RedactingSpanExporter

    threads: list[str] = []
    real = redaction.redact_span

    def recording(span: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(span)

    monkeypatch.setattr(redaction, "redact_span", recording)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(exporter)))
    provider.get_tracer("t").start_span(
        "GET", attributes={"url.full": "http://h/p?signature=deadbeef&symbol=X"}).end()
    assert threading.current_thread().name not in threads  # span.end() did not redact
    assert provider.force_flush(10_000)  # exports (and redacts) on the flushing thread
    (exported,) = exporter.get_finished_spans()
    assert exported.attributes == {"url.full": "http://h/p?signature=REDACTED&symbol=X"}
    assert len(threads) == 1
    provider.shutdown()


def test_redacting_exporter_drops_a_span_it_cannot_redact(
    monkeypatch: pytest.MonkeyPatch, telemetry: Any
) -> None:
    from otel_botmon.redaction import RedactingSpanExporter

    def broken(span: object) -> object:
        raise RuntimeError("redaction bug")

    inner = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(inner)))
    monkeypatch.setattr(redaction, "redact_span", broken)
    provider.get_tracer("t").start_span("GET", attributes={"url.full": "http://h/?token=t"}).end()
    assert inner.get_finished_spans() == ()
