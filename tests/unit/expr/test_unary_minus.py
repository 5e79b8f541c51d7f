"""Unary minus negates, as PromQL's: the sign of zero flips (found by the differential
test against promtool, ``tests/integration/rules/test_differential.py``)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.alerting.promexport import to_promql
from otel_botmon.query import Labels, MetricHistory, compile_condition
from otel_botmon.query.syntax import evaluate_node

_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0]))


def _eval(text: str, value: float) -> float:
    history = MetricHistory()
    history.add_point("my.depth", Labels({"q": "a"}), value, 0.0)
    result = evaluate_node(compile_condition(text).tree, history, 10.0)
    assert isinstance(result, dict)
    (got,) = result.values()
    return got


@given(_VALUES)
def test_minus_flips_the_sign_of_every_value(value: float) -> None:
    got = _eval("-my.depth", value)
    if math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == -value and math.copysign(1.0, got) == -math.copysign(1.0, value)


def test_minus_minus_zero_is_zero_and_minus_zero_is_negative() -> None:
    assert math.copysign(1.0, _eval("-my.depth", 0.0)) < 0
    assert math.copysign(1.0, _eval("- -my.depth", 0.0)) > 0


def test_the_export_negates_too() -> None:
    assert "0 -" not in to_promql("-botmon.health.status", per_bot=())
