"""Secrets in URLs whose query is not a plain ``&`` list: pairs after ``;``, a nested URL
that is not percent-encoded, path parameters, names with ``+`` or a space.

These reached ``url.full`` in clear before (the URL paths split queries at ``&`` only,
and a name's space was not ignored), while ``redact_text`` caught them in an exception
message. Each is checked through every way a URL is redacted: ``redact_url`` (the
instrumentations' hooks; called again so its shape caches and matcher serve it),
``redact_text`` and a span's ``url.full`` through the span processor.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import _redact_url, redaction
from otel_botmon.exchanges import all_exact_secret_names, all_secret_names
from otel_botmon.redaction import REDACTED, RedactingSpanProcessor, redact_text, redact_url

SECRET = "Zq81SECRETvalue77"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


@pytest.fixture()
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    yield provider, exporter
    provider.shutdown()


def _through_a_span(provider: TracerProvider, exporter: InMemorySpanExporter, url: str) -> str:
    exporter.clear()
    with provider.get_tracer("t").start_as_current_span("GET") as span:
        span.set_attribute("url.full", url)
    (finished,) = exporter.get_finished_spans()
    value = (finished.attributes or {})["url.full"]
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(("url", "expected"), [
    (f"https://h/p?a=1;signature={SECRET}",
     f"https://h/p?a=1;signature={REDACTED}"),
    (f"https://h/p?a=1;signature={SECRET};b=2&c=3",  # the rest of the part goes too
     f"https://h/p?a=1;signature={REDACTED}&c=3"),
    (f"https://h/p?redirect=https://o/cb?token={SECRET}&x=1",
     f"https://h/p?redirect=https://o/cb?token={REDACTED}&x=1"),
    (f"https://h/p?api+key={SECRET}&x=1", f"https://h/p?api+key={REDACTED}&x=1"),
    (f"https://h/p?Api%20Key={SECRET}", f"https://h/p?Api%20Key={REDACTED}"),
    (f"https://h/p;jsid=1;access_token={SECRET}?x=1",
     f"https://h/p;jsid=1;access_token={REDACTED}?x=1"),
    (f"https://h/p?x=1#a=1;access_token={SECRET}",
     f"https://h/p?x=1#a=1;access_token={REDACTED}"),
    (f"https://h/p?sig={SECRET};tail&x=1",  # a ';' inside a secret keeps nothing after it
     f"https://h/p?sig={REDACTED}&x=1"),
    (f"https://h/p#state=x#access_token={SECRET}",  # a second '#' in the fragment
     f"https://h/p#state=x#access_token={REDACTED}"),
    (f"https://h/p?redirect=https://o/cb#a=1#token={SECRET}",
     f"https://h/p?redirect=https://o/cb#a=1#token={REDACTED}"),
    (f"https://h/p?redirect=https://o/cb/access_token={SECRET}&x=1",  # a nested path
     f"https://h/p?redirect=https://o/cb/access_token={REDACTED}&x=1"),
    (f"https://h/p?proxy=http://user:{SECRET}@o:8080&x=1",  # a nested URL's credentials
     f"https://h/p?proxy=http://{REDACTED}:{REDACTED}@o:8080&x=1"),
])
def test_a_secret_after_a_semicolon_a_nested_question_mark_or_a_spaced_name_is_redacted(
    url: str, expected: str, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    for _ in range(3):  # the shape is learnt, then its matcher would serve it
        assert redact_url(url) == expected
        assert _through_a_span(*spans, url) == expected
    assert SECRET not in redact_text(f"GET {url} failed: 500")


@pytest.mark.parametrize(("query", "expected"), [
    (f"symbol=X&signature={SECRET}&b=1", f"symbol=X&signature={REDACTED}&b=1"),
    (f"a=1;api+key={SECRET}", f"a=1;api+key={REDACTED}"),
    (f"redirect=https://o/cb?token={SECRET}", f"redirect=https://o/cb?token={REDACTED}"),
])
def test_a_query_alone_in_url_query_is_redacted(
    query: str, expected: str, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    # url.query holds the query without its '?' (semantic conventions)
    provider, exporter = spans
    for _ in range(3):
        exporter.clear()
        with provider.get_tracer("t").start_as_current_span("GET") as span:
            span.set_attribute("url.query", query)
        (finished,) = exporter.get_finished_spans()
        assert (finished.attributes or {})["url.query"] == expected
        assert redact_url(query) == expected


def test_a_url_is_scanned_whole_after_other_attributes_used_the_span_budget(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    # four texts of 4,096 pairs each spend the span's separator budget: a URL after them
    # is still scanned whole (the URL path has its own bound), neither cut nor left
    provider, exporter = spans
    url = f"https://api.h/v1/order;type=limit?symbol=BTC&signature={SECRET}"
    with provider.get_tracer("t").start_as_current_span("GET") as span:
        for i in range(4):
            span.set_attribute(f"note{i}", "k=v " * 4096)
        span.set_attribute("url.full", url)
        span.set_attribute("url.query", f"symbol=BTC&signature={SECRET}")
    (finished,) = exporter.get_finished_spans()
    attributes = finished.attributes or {}
    assert attributes["url.full"] == url.replace(SECRET, REDACTED)
    assert attributes["url.query"] == f"symbol=BTC&signature={REDACTED}"


def test_plain_queries_keep_the_fast_path_and_their_bytes() -> None:
    url = "https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&signature=ab12"
    for _ in range(3):
        assert redact_url(url) == url.replace("ab12", REDACTED)
    assert _redact_url.matched_url(url) == url.replace("ab12", REDACTED)  # learnt
    for odd in (url.replace("side=BUY", "side=BUY;x=1"),
                url.replace("side=BUY", "side=https://o/cb?x=1")):
        assert _redact_url.matched_url(odd) is None  # the general path looks into those
        assert redact_url(odd).endswith("signature=" + REDACTED)


@pytest.mark.parametrize("name", ["api key", "API Key", "secret key", "x api key"])
def test_a_name_with_a_space_counts_as_its_words_joined(name: str) -> None:
    assert redaction.is_sensitive_key(name)
    assert redaction.is_sensitive_key(name.replace(" ", "_"))


# --- property: any mix of separators and nesting, no secret survives -----------------

SECRET_NAMES = sorted(all_secret_names() | all_exact_secret_names())
ORDINARY = ["symbol", "side", "timestamp", "x", "cb", "redirect", "jsid"]


def _spelled(name: str, style: int) -> str:
    """A secret name as sent: as is, words joined by '+' or '%20', or upper case."""
    if style == 1:
        return name.replace("_", "+")
    if style == 2:
        return name.replace("_", "%20")
    if style == 3:
        return name.upper()
    return name


@st.composite
def _queries(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A query of pairs separated by '&' or ';', some holding a nested URL with more
    pairs after its '?' or '#' or in its path; returns it with the secret values it
    holds (each after a secret name)."""
    secrets: list[str] = []
    counter = [0]

    def pair() -> str:
        if draw(st.booleans()):
            counter[0] += 1
            value = f"{SECRET}{counter[0]}x"
            secrets.append(value)
            name = _spelled(draw(st.sampled_from(SECRET_NAMES)), draw(st.integers(0, 3)))
            return f"{name}={value}"
        name = draw(st.sampled_from(ORDINARY))
        return f"{name}={draw(st.text(alphabet='0123456789abcdef/:.', max_size=12))}"

    parts = []
    for _ in range(draw(st.integers(1, 5))):
        part = pair()
        for _ in range(draw(st.integers(0, 3))):
            mark = draw(st.sampled_from([";", "?", "#", "/"]))
            if mark != ";":  # a nested URL: the pair's value becomes one, with a query,
                part += "https://o/cb"  # a fragment, or a pair in its path
            part += mark + pair()
        parts.append(part)
    return "&".join(parts), secrets


# (the span fixture's exporter is cleared before every span it is read for)
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_queries(), head=st.sampled_from([
    "https://api.h/v1/order?", "https://h/p;jsid=1?", "http://u:p@h/?", "https://h/p#",
    "",  # the query alone, as in url.query
]))
def test_no_secret_after_any_separator_survives_any_path(
    query: tuple[str, list[str]], head: str,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    text, secrets = query
    url = head + text
    provider, exporter = spans
    for _ in range(3):  # learnt shapes and the matcher, as for a bot's repeated requests
        out = redact_url(url)
        exporter.clear()
        with provider.get_tracer("t").start_as_current_span("GET") as span:
            span.set_attribute("url.full" if head else "url.query", url)
        (finished,) = exporter.get_finished_spans()
        for secret in secrets:
            assert secret not in out
            assert secret not in str(finished.attributes)
    for secret in secrets:
        assert secret not in redact_text(f"request {url} failed")
