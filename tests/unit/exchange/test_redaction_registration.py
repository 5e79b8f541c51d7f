"""A secret or a sensitive name added while texts are cached as clean is never let through.

Redaction remembers texts that redact to themselves (and per-key and per-query-shape
decisions). Registering a secret or a name must invalidate all of it, including what a
redaction running on another thread at that moment computed with the old secrets.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_botmon import redaction
from otel_botmon.redaction import (
    REDACTED,
    RedactingSpanProcessor,
    add_sensitive_keys,
    redact_attributes,
    redact_text,
    redact_url,
    register_secret,
)

SECRET = "hunter2-7f3a9c"


def test_a_text_cached_clean_is_redacted_once_its_secret_is_registered() -> None:
    text = f"order rejected for account {SECRET}"
    url = f"https://api.example.com/v1/order?memo={SECRET}&id=1"
    attributes = {"error.detail": f"account {SECRET} locked"}
    for _ in range(3):  # the second and third pass come from the caches
        assert redact_text(text) == text
        assert redact_url(url) == url
        assert redact_attributes(attributes) == attributes
    register_secret(SECRET)
    assert SECRET not in redact_text(text)
    assert SECRET not in redact_url(url)
    assert SECRET not in str(redact_attributes(attributes))


def test_a_span_attribute_cached_clean_is_redacted_once_its_secret_is_registered() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("test")
    url = f"https://api.example.com/v1/order?memo={SECRET}&ts=1&signature=abc"
    for _ in range(3):  # name, value and query shape cached, a matcher built
        tracer.start_span("order", attributes={"note": SECRET, "url.full": url}).end()
    register_secret(SECRET)
    tracer.start_span("order", attributes={"note": SECRET, "url.full": url}).end()
    last = exporter.get_finished_spans()[-1]
    assert SECRET not in str(dict(last.attributes or {}))


def test_a_name_added_later_redacts_a_key_and_a_query_shape_already_cached() -> None:
    url = "https://api.example.com/v1/stream?listenToken2=abc123&ts=1"
    for ts in range(3):  # shape planned, then matched
        assert redact_url(url.replace("ts=1", f"ts={ts}")).startswith(
            "https://api.example.com/v1/stream?listenToken2=abc123")
        assert redact_attributes({"bot.pin_code": "1234"}) == {"bot.pin_code": "1234"}
    add_sensitive_keys("listenToken2", "pin_code")
    assert f"listenToken2={REDACTED}" in redact_url(url)
    assert redact_attributes({"bot.pin_code": "1234"}) == {"bot.pin_code": REDACTED}


class _RegistersMidway(Mapping[str, Any]):
    """Attributes whose iteration registers the secret after the first item, then gives
    every other key twice (once to be looked at afresh, once more as a known key): the
    deterministic form of another thread registering it during a redaction."""

    def __init__(self, items: dict[str, Any], register: str) -> None:
        self._items = items
        self._register = register

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        for position, key in enumerate(self._items):
            if position == 1:
                register_secret(self._register)
            yield key
            if position:
                yield key


def test_a_secret_registered_during_a_redaction_is_not_cached_as_clean() -> None:
    text = f"balance low on {SECRET}"  # no separator: the cheapest path remembers it
    attributes = _RegistersMidway({"first": "x", "note": text}, SECRET)
    redaction.redacted_changes(attributes)  # may miss it: it raced the registration
    assert redaction._secrets  # registered
    assert SECRET not in redact_text(text)
    assert SECRET not in str(redact_attributes({"note": text}))


@pytest.fixture
def fast_switching() -> Iterator[None]:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


@pytest.mark.usefixtures("fast_switching")
def test_threads_redacting_while_secrets_are_registered_never_keep_a_stale_clean_text(
) -> None:
    rounds, workers = 100, 3
    secrets = [f"sk-{n:04d}-a8f0c2e4b6d1" for n in range(rounds)]
    produced: list[list[str]] = [[] for _ in range(workers)]
    stop = threading.Event()

    def redact_forever(worker: int) -> None:
        seen = produced[worker]
        n = 0
        while not stop.is_set():
            n += 1
            for secret in secrets:  # unique texts: every one is scanned, then remembered
                text = f"reject {secret} {worker}-{n}"
                redact_text(text)
                url = f"https://api.example.com/v1/order?memo={secret}&id={worker}-{n}"
                redact_url(url)
                redact_attributes({"note": text})
                seen.append(text)
                seen.append(url)

    threads = [threading.Thread(target=redact_forever, args=(w,), daemon=True)
               for w in range(workers)]
    for thread in threads:
        thread.start()
    leaks = []
    try:
        for secret in secrets:
            register_secret(secret)
            # every text redacted so far (some while this secret was being registered)
            # must now come out without it, whatever the caches hold
            for seen in produced:
                for text in list(seen[-4 * len(secrets):]):
                    if secret in text:
                        out = redact_url(text) if text.startswith("https:") \
                            else redact_text(text)
                        if secret in out:
                            leaks.append(text)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not leaks, f"{len(leaks)} texts kept a registered secret, e.g. {leaks[:3]}"



# printable ASCII but '%' (yarl keeps an escape it is given) and '.' (dot segments)
_URL_SECRETS = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="%."),
    min_size=8, max_size=24).filter(lambda s: s.strip() == s)


@settings(max_examples=60, deadline=None)
@given(secret=_URL_SECRETS)
def test_a_registered_secret_in_an_aiohttp_url_is_scrubbed(secret: str) -> None:
    """aiohttp's URLs (yarl) encode fewer characters than urllib: '/', ':', '@' stay in a
    query value; '+', '=', '&' in a path."""
    yarl = pytest.importorskip("yarl")
    query = yarl.URL("https://h.example/p").with_query({"note": secret})
    path = yarl.URL.build(scheme="https", host="h.example", path="/bot/" + secret)
    forms = [(str(query), query.raw_query_string.partition("=")[2]),
             (str(path), path.raw_path.removeprefix("/bot/")),
             ("https://h.example/" + quote(secret), quote(secret))]
    redaction.register_secret(secret)
    try:
        for url, encoded in forms:
            for out in (redaction.redact_url(url), redaction.redact_text(url)):
                assert encoded not in out, (secret, url, out)
    finally:
        redaction.forget_secrets()


@settings(max_examples=60, deadline=None)
@given(secret=_URL_SECRETS.filter(lambda s: quote(s, safe="") != s))
def test_a_registered_secret_escaped_with_lower_case_hex_is_scrubbed(secret: str) -> None:
    """``%2b`` as well as ``%2B``: both are what a client or a server may write."""
    lower = "%".join(
        part[:2].lower() + part[2:] if i else part
        for i, part in enumerate(quote(secret, safe="").split("%")))
    assume(lower != quote(secret, safe=""))  # an escape with a hex letter: %2B, %3A
    redaction.register_secret(secret)
    try:
        for text in (f"https://h.example/p?note={lower}&x=1", f"sent note={lower} twice"):
            assert lower not in redaction.redact_text(text), (secret, text)
        assert lower not in redaction.redact_url(f"https://h.example/p?note={lower}&x=1")
    finally:
        redaction.forget_secrets()


@given(secret=st.text("abcdefghijklmnopqrstuvwxyz", min_size=8, max_size=15))
def test_an_endpoint_label_made_before_a_secret_was_registered_is_not_reused(
        secret: str) -> None:
    """A path label is cached: a secret in it registered after its first request (a key
    set on the exchange after it was instrumented) must not stay in the cached label."""
    from otel_botmon.instrument.exchange import _endpoint_label, endpoint_from_path

    path = f"/v1/sub/{secret}/balance"
    assert secret in endpoint_from_path(path) and secret in _endpoint_label(path)
    redaction.register_secret(secret)
    try:
        assert secret not in endpoint_from_path(path)
        assert secret not in _endpoint_label(path)
    finally:
        redaction.forget_secrets()
    assert secret in endpoint_from_path(path)  # forgotten: shown again


@settings(max_examples=60, deadline=None)
@given(secret=st.text("0123456789abcdef", min_size=16, max_size=300),
       offset=st.integers(0, 400))
def test_a_registered_secret_split_by_a_cut_leaves_no_part_behind(secret: str,
                                                                   offset: int) -> None:
    """Texts cut to a length (a receiver's error answer in a delivery's detail, a path
    in the ``exchange.endpoint`` label) are redacted whole first: cut first, a secret
    straddling the cut kept its first characters."""
    import httpx

    from otel_botmon.instrument.exchange import _endpoint_label
    from otel_botmon.notify.base import classify_response

    redaction.register_secret(secret)
    try:
        body = "x" * offset + secret + "x" * 40
        answer = httpx.Response(500, text=body, request=httpx.Request("POST", "http://x"))
        detail = classify_response(answer).detail
        label = _endpoint_label("/" + "x" * offset + secret + "/balance")
        for out in (detail, label):
            assert secret[:8] not in out, (offset, len(secret), out)
    finally:
        redaction.forget_secrets()
