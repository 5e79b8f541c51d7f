"""The signed-URL fast paths redact exactly what the general path does.

Differential: random URLs whose query names come from the exchange table's secret
names (as sent, URL-encoded, or nested in another parameter's value) and ordinary
names, with and without registered secrets, through the one-pass matcher
(``_redact_url.matched_url``) and the span processor's branch
(``_redact_span._scrub_common``) against the general URL path
(``_redact_url._redact_url_slow``), which never uses a matcher.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import _redact_span, _redact_url, redaction
from otel_botmon._redact_scan import MAX_SEPARATORS, MAX_TEXT_CHARS, Budget
from otel_botmon.exchanges import all_exact_secret_names, all_secret_names

SECRET_NAMES = sorted(all_secret_names() | all_exact_secret_names())
ORDINARY = ["symbol", "side", "timestamp", "recvWindow", "limit", "orderId", "memo", "x"]
REGISTERED = "Zq81secretVALUEforBench"
NAMES = st.one_of(
    st.sampled_from(SECRET_NAMES), st.sampled_from(ORDINARY),
    st.sampled_from(SECRET_NAMES).map(lambda n: quote(n.replace("-", "_"), safe="")),
)
VALUES = st.one_of(
    st.text(alphabet="0123456789abcdefXYZ=:+-_.;,~/?", max_size=24),
    st.just(REGISTERED), st.just(REGISTERED[:8]),
    st.sampled_from(SECRET_NAMES).map(  # a URL nested in a value, encoded
        lambda n: quote(f"https://h/cb?{n}=nested-{n}", safe="")),
)
QUERY = st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=6)
HEADS = st.sampled_from(["https://api.binance.com/api/v3/order", "https://h/a&b",
                         "https://u:p@h/p", "http://h"])


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


def _url(head: str, params: list[tuple[str, str]], values: int) -> str:
    # the same names with values of another request (as a bot signs again)
    return head + "?" + "&".join(f"{k}={v}{values or ''}" for k, v in params)


def _reference(url: str) -> str:
    return _redact_url._redact_url_slow(url, Budget(MAX_TEXT_CHARS, MAX_SEPARATORS), set())


@settings(max_examples=300, deadline=None)
@given(HEADS, QUERY, st.booleans(), st.sampled_from(["", "#frag=1"]))
def test_the_matcher_and_the_processor_branch_redact_as_the_general_path(
    head: str, params: list[tuple[str, str]], register: bool, fragment: str,
) -> None:
    redaction.forget_secrets()  # fresh caches: each example's shape gets its matcher
    if register:
        redaction.register_secret(REGISTERED)
    for values in range(4):  # the shape is seen, gets its matcher, then serves
        url = _url(head, params, values) + fragment
        expected = _reference(url)
        matched = _redact_url.matched_url(url)
        assert matched is None or matched == expected
        common = not any(c in url for c in "%#@;") and url.count("?") == 1 \
            and not (register and REGISTERED[:8] in url)
        if values >= 2 and common:  # the fast path did serve it
            assert matched == expected
        assert redaction.redact_url(url) == expected
        attributes = {"http.request.method": "GET", "url.full": url, "server.port": 443,
                      "http.request.header.x_mbx_apikey": ("k" * 16,)}
        if not _redact_span._scrub_common(attributes):
            attributes.update(redaction._changes(attributes, None) or {})
        assert attributes["url.full"] == expected
        assert attributes["http.request.header.x_mbx_apikey"] == (redaction.REDACTED,)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=5),
       st.sampled_from(SECRET_NAMES), st.text(alphabet="0123456789abcdef", max_size=64))
def test_a_known_shape_with_a_registered_secret_in_any_value_falls_back_and_scrubs_it(
    names: list[str], secret_name: str, signature: str,
) -> None:
    redaction.register_secret(REGISTERED)
    base = "https://api.binance.com/api/v3/order?"
    for i in range(3):  # warm the shape
        redaction.redact_url(base + "&".join(f"{n}={i}" for n in names)
                             + f"&{secret_name}={signature}")
    url = base + "&".join(f"{n}=a{REGISTERED}b" for n in names) + f"&{secret_name}=s"
    assert REGISTERED not in redaction.redact_url(url)
    assert redaction.redact_url(url) == _reference(url)


TREE_NAMES = st.one_of(st.sampled_from([*ORDINARY, "", "a", "ab"]), st.sampled_from(SECRET_NAMES))
TREE_PART = st.tuples(TREE_NAMES, st.booleans())  # (name, with '=' and a value)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(TREE_PART, min_size=1, max_size=5), min_size=2, max_size=10),
       st.booleans())
def test_many_shapes_in_one_matcher_redact_each_as_the_general_path(
    shapes: list[list[tuple[str, bool]]], register: bool,
) -> None:
    # shapes sharing first parameters, one shape a prefix of another, flags and empty
    # names, all in one matcher: each URL redacted exactly as the general path does
    redaction.forget_secrets()
    if register:
        redaction.register_secret(REGISTERED)
    prefixes = shapes + [shape[:1] for shape in shapes]

    def url(shape: list[tuple[str, bool]], values: int) -> str:
        return "https://h/p?" + "&".join(
            f"{name}={values}v{i}" if valued else name for i, (name, valued) in enumerate(shape))

    for values in range(2):  # each shape seen twice: all of them are learnt
        for shape in prefixes:
            redaction.redact_url(url(shape, values))
    # the matcher is compiled when its shapes have grown by half: compile the tree of all
    # the learnt shapes now, as the next growth point would
    if _redact_url._matcher_shapes:
        _redact_url._matcher[0] = _redact_url._compile_matcher(_redact_url._matcher_shapes)
    for shape in prefixes:
        fresh = url(shape, 7)
        expected = _reference(fresh)
        matched = _redact_url.matched_url(fresh)
        assert matched in (None, expected)
        if expected != fresh:  # a shape with a secret: it repeated, the matcher serves it
            assert matched == expected
        assert redaction.redact_url(fresh) == expected
