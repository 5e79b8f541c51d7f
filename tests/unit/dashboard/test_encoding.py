"""The dashboard's JSON: always parseable by a browser, unchanged when already clean."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.dashboard.encoding import dumps, json_safe


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(token)

    return json.loads(text, parse_constant=refuse)


_anything = st.recursive(
    st.one_of(st.floats(), st.integers(), st.booleans(), st.none(), st.text(max_size=10),
              st.decimals(), st.just(object()), st.binary(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(), st.tuples(st.integers())),
                        inner, max_size=3)),
    max_leaves=10,
)

_clean = st.recursive(
    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.booleans(),
              st.none(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10,
)


@given(_anything)
def test_any_value_is_written_as_strict_json(value: Any) -> None:
    _strict(dumps(value))


@given(_clean)
def test_clean_values_are_written_as_json_writes_them(value: Any) -> None:
    assert _strict(dumps(value)) == json.loads(json.dumps(value))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_number_is_itself_when_finite_else_null(number: float) -> None:
    assert json_safe({"x": [number]}) == {"x": [number if math.isfinite(number) else None]}
    assert _strict(dumps({"x": number}))["x"] == (number if math.isfinite(number) else None)


def test_a_self_containing_value_is_written_not_raised() -> None:
    loop: list[Any] = [1.0]
    loop.append(loop)
    assert _strict(dumps(loop))[0] == 1.0
