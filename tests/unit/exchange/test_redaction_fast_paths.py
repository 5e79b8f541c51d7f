"""The fast paths of redaction give exactly what the full scan gives."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import _redact_scan, _redact_span, _redact_url, redaction
from otel_botmon._redact_scan import Budget
from otel_botmon.redaction import REDACTED, redact_url

NAMES = st.sampled_from(["symbol", "side", "signature", "apiKey", "api%5Fkey", "timestamp",
                         "listenKey", "token", "a+b", "recvWindow", "", "KEY", "key2"])
VALUES = st.text(alphabet="0123456789abcdefXYZ=:%+-_.;,~/", max_size=30)
PARTS = st.tuples(NAMES, st.sampled_from(["=", ""]), VALUES).map(
    lambda t: t[0] + t[1] + (t[2].replace("&", "") if t[1] else ""))
QUERIES = st.lists(PARTS, min_size=1, max_size=8).map("&".join)


@settings(max_examples=400)
@given(QUERIES)
def test_the_query_shape_cache_equals_the_full_scan(query: str) -> None:
    full = _redact_url.redact_query_full(query)
    assert _redact_url.redact_query(query) == full  # first time: plan made and cached
    assert _redact_url.redact_query(query) == full  # then: plan from the cache


@settings(max_examples=200)
@given(st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=6),
       st.text(alphabet="0123456789abcdef", min_size=16, max_size=64))
def test_a_signed_url_never_keeps_its_signature_on_either_path(
    params: list[tuple[str, str]], signature: str,
) -> None:
    query = "&".join(f"{k}={v}" for k, v in params) + f"&signature={signature}"
    url = "https://api.binance.com/api/v3/order?" + query
    redacted = redact_url(url)
    assert f"signature={REDACTED}" in redacted
    assert redacted.endswith("signature=" + REDACTED)
    assert redacted == redact_url(url)  # again, through the caches


SHAPE_NAMES = st.lists(NAMES.filter(lambda n: "%" not in n), min_size=1, max_size=8)
PLAIN_VALUES = st.text(alphabet="0123456789abcdefXYZ=:+-_.;,~/", max_size=30)


@settings(max_examples=200)
@given(SHAPE_NAMES, st.lists(st.lists(PLAIN_VALUES, min_size=8, max_size=8), min_size=3,
                             max_size=5))
def test_a_repeated_query_shape_is_matched_exactly_as_the_full_scan_redacts(
    names: list[str], value_sets: list[list[str]],
) -> None:
    # the same names with fresh values each time: the third request onwards is served by
    # the shape's matcher, through redact_url and through span attributes alike
    for values in value_sets:
        query = "&".join(f"{name}={value}" for name, value in zip(names, values, strict=False))
        expected = "https://api.binance.com/api/v3/order?" + _redact_url.redact_query_full(query)
        url = "https://api.binance.com/api/v3/order?" + query
        assert redact_url(url) == expected
        assert redaction.redact_attributes({"url.full": url})["url.full"] == expected


def test_matched_url_takes_only_the_common_kind_of_url() -> None:
    query = "symbol=BTCUSDT&timestamp={}&signature={}"
    for i in range(3):
        redact_url("https://h/p?" + query.format(i, "ab" * 8))
    assert _redact_url.matched_url("https://h/p?" + query.format(9, "cd" * 8)) == \
        "https://h/p?" + query.format(9, REDACTED)
    for odd in ("https://u:p@h/p?", "https://h/p%3F?"):
        assert _redact_url.matched_url(odd + query.format(9, "cd")) is None
    # an '&' before the '?' is kept as the general path keeps it
    assert _redact_url.matched_url("https://h/a&b?" + query.format(9, "cd")) == \
        "https://h/a&b?" + query.format(9, REDACTED) == \
        _redact_url._redact_url_slow("https://h/a&b?" + query.format(9, "cd"), Budget(), set())
    assert _redact_url.matched_url("https://h/p?" + query.format(9, "cd") + "#x") is None


KEYS = st.sampled_from(["url.full", "http.url", "http.request.method", "server.address",
                        "http.request.header.x_mbx_apikey", "api_key", "note", "count"])
SIGNED_URLS = st.builds(
    lambda ts, sig: f"https://api.binance.com/api/v3/order?symbol=BTC&timestamp={ts}"
                    f"&signature={sig}",
    st.integers(0, 10**13), st.text(alphabet="0123456789abcdef", min_size=1, max_size=64))
ATTRIBUTE_VALUES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), SIGNED_URLS,
    st.sampled_from(["GET", "api.binance.com", "token=abc", "https://h/p?x=1#t=2", "",
                     "[('X-MBX-APIKEY', 'k3y')]", '["symbol","BTC"]']),
    st.tuples(st.sampled_from(["k" * 16, "a=b", "REDACTED"])), VALUES)


@settings(max_examples=300)
@given(st.dictionaries(KEYS, ATTRIBUTE_VALUES, max_size=6))
def test_the_span_processors_branch_redacts_as_the_general_path(
    attributes: dict[str, object],
) -> None:
    expected = redaction.redact_attributes(attributes)  # type: ignore[arg-type]
    for _ in range(3):  # the third time, known shapes and clean texts are lookups
        scrubbed = dict(attributes)
        if not _redact_span._scrub_common(scrubbed):
            scrubbed.update(redaction._changes(scrubbed, None) or {})
        assert scrubbed == expected


def test_many_query_shapes_with_as_many_parameters_are_all_redacted() -> None:
    # more shapes than the matcher holds (_MAX_MATCHED_SHAPES): the rest take the plan path
    shapes = [f"p{n}=1&signature={{}}&q{n}=2" for n in range(80)]
    for _ in range(3):
        for n, shape in enumerate(shapes):
            url = f"https://h/p?{shape.format('ab' * 8)}"
            assert redact_url(url) == f"https://h/p?p{n}=1&signature={REDACTED}&q{n}=2"
            assert redaction.redact_attributes({"url.full": url})["url.full"] == \
                f"https://h/p?p{n}=1&signature={REDACTED}&q{n}=2"


def test_a_known_query_shape_still_scrubs_a_registered_secret() -> None:
    redaction.register_secret("my-exchange-secret-77")
    for ts in range(4):  # the shape gets its matcher, then serves
        url = f"https://h/p?memo=order-{ts}&timestamp={ts}&signature={'ab' * 8}"
        assert redact_url(url) == f"https://h/p?memo=order-{ts}&timestamp={ts}" \
                                  f"&signature={REDACTED}"
    leaky = "https://h/p?memo=my-exchange-secret-77&timestamp=9&signature=abab"
    assert redact_url(leaky) == f"https://h/p?memo={REDACTED}&timestamp=9&signature={REDACTED}"
    assert redaction.redact_attributes({"url.full": leaky})["url.full"] == \
        f"https://h/p?memo={REDACTED}&timestamp=9&signature={REDACTED}"


LAST_VALUES = st.text(alphabet="0123456789abcdef=?:/;, \n\r\t\x0b\x85\u2028é", max_size=40)


@settings(max_examples=200)
@given(SHAPE_NAMES, st.lists(st.tuples(PLAIN_VALUES, LAST_VALUES), min_size=3, max_size=5),
       st.sampled_from(["https://h/p", "https://h/a&b", "https://h/a?b"]))
def test_a_known_shapes_last_value_of_any_characters_is_matched_as_the_full_scan_redacts(
    names: list[str], values: list[tuple[str, str]], head: str,
) -> None:
    # line breaks, '?' and '=' in the last value, or an '&' before the '?', must not
    # change the result
    for middle, last in values:
        query = "&".join(f"{name}={middle}" for name in names[:-1]) + f"&{names[-1]}={last}"
        url = f"{head}?{query}"
        expected = _redact_url._redact_url_slow(url, Budget(), set())  # no matcher there
        assert redact_url(url) == expected
        matched = _redact_url.matched_url(url)
        assert matched is None or matched == expected


def test_a_signature_with_a_line_break_is_still_served_by_the_matcher() -> None:
    query = "symbol=BTCUSDT&timestamp={}&signature={}"
    for i in range(3):
        redact_url("https://h/p?" + query.format(i, "ab" * 8))
    url = "https://h/p?" + query.format(9, "ab\ncd\u2028ef")
    assert _redact_url.matched_url(url) == "https://h/p?" + query.format(9, REDACTED)


class Text(str):
    """A str subclass, as a user's enum of strings is."""


@settings(max_examples=200)
@given(st.dictionaries(KEYS, st.one_of(
    ATTRIBUTE_VALUES, st.sampled_from(["GET", "api.binance.com", "token=abc"]).map(Text),
    st.sampled_from([b"GET", b"token=abc", bytearray(b"GET")]),
    st.lists(st.sampled_from(["GET", "a=b"]), max_size=2)), max_size=6))
def test_the_span_processors_branch_takes_any_value_as_the_general_path_does(
    attributes: dict[str, object],
) -> None:
    # texts equal to clean ones that are not str (a str subclass, bytes) and unhashable
    # values: the branch looks up membership before the type
    redaction.redact_attributes({"http.request.method": "GET", "note": "api.binance.com"})
    expected = redaction.redact_attributes(attributes)  # type: ignore[arg-type]
    for _ in range(3):
        scrubbed = dict(attributes)
        if not _redact_span._scrub_common(scrubbed):
            scrubbed.update(redaction._changes(scrubbed, None) or {})
        assert scrubbed == expected
        assert [type(v) for v in scrubbed.values()] == [type(v) for v in expected.values()]


def test_learning_shapes_compiles_the_matcher_a_logarithmic_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The matcher is compiled on the bot's thread: learning k shapes compiles it
    O(log k) times, O(k) shapes in all (it was once per new shape: k*k/2 shapes), and
    every learnt shape is still redacted as the general path redacts it."""
    _redact_url.forget_cached()
    compiled: list[int] = []
    real = _redact_url._compile_matcher

    def counting(shapes: list[tuple[tuple[str, bool], ...]]) -> _redact_url.Matcher:
        compiled.append(len(shapes))
        return real(shapes)

    monkeypatch.setattr(_redact_url, "_compile_matcher", counting)
    k = _redact_url._MAX_MATCHED_SHAPES
    for n in range(k):
        for ts in range(2):  # seen twice: the shape repeats, so it is learnt
            url = f"https://h/p?a{n}=1&timestamp={ts}&signature={'cd' * 8}"
            assert redact_url(url) == f"https://h/p?a{n}=1&timestamp={ts}&signature={REDACTED}"
    assert compiled[-1] == k  # the full tree is compiled in the end
    assert len(compiled) <= 2 * math.ceil(math.log(k, 1.5))
    assert sum(compiled) <= 4 * k
    for n in range(k):  # all served, as the general path serves them
        url = f"https://h/p?a{n}=1&timestamp=7&signature={'ef' * 8}"
        assert _redact_url.matched_url(url) == f"https://h/p?a{n}=1&timestamp=7&signature={REDACTED}"


PAIR_PIECES = st.lists(st.sampled_from(
    ["(", "[", ")", "]", " ", "\t", ",", "'", '"', "\\", "b", "KEY", "x_1", "-", ".",
     "('KEY', '", '["KEY", "', "(b'K', b'", '[\\"K\\", \\"', ", ", "',", '",', "0a" * 40]),
    max_size=40).map("".join)


@settings(max_examples=1000)
@given(PAIR_PIECES, st.integers(min_value=0, max_value=400))
def test_the_header_pair_search_finds_what_a_plain_regex_search_finds(
    text: str, pos: int,
) -> None:
    # _next_tuple tries the expression only around commas after a quote (a plain search
    # tried every position of a long message); it must find the same pair.
    pos = min(pos, len(text))
    found = _redact_scan._TUPLE_PAIR.search(text, pos)
    expected = (-1, -1, "") if found is None else (
        found.end(2) + len(found.group(1)), found.end(), found.group(2))
    assert _redact_scan._next_tuple(text, pos) == expected
