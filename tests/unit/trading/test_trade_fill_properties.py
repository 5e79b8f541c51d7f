"""Properties of fills: volume, notional, average price and outcome add up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_botmon import conventions as conv
from otel_botmon.instrument.trading import trade
from otel_botmon.testing import capture

quantities = st.floats(min_value=0.001, max_value=1000, allow_nan=False)
prices = st.floats(min_value=0.01, max_value=100_000, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    requested_qty=quantities,
    requested_price=prices,
    fills=st.lists(st.tuples(quantities, prices), min_size=1, max_size=5),
    side=st.sampled_from(["BUY", "SELL"]),
)
def test_fills_add_up(
    requested_qty: float, requested_price: float, fills: list[tuple[float, float]], side: str
) -> None:
    with capture() as cap:
        with trade(symbol="X", side=side, quantity=requested_qty, price=requested_price) as t:
            for qty, price in fills:
                t.filled(price=price, quantity=qty)

        total_qty = sum(q for q, _ in fills)
        notional = sum(q * p for q, p in fills)
        assert cap.metric_value("botmon.trade.volume") == pytest.approx(total_qty)
        assert cap.metric_value("botmon.trade.notional") == pytest.approx(notional)
        span = cap.span("trade X")
        average = notional / total_qty
        assert span.attributes[conv.TRADING_FILL_PRICE] == pytest.approx(average)
        expected_outcome = "partial" if total_qty < requested_qty * (1 - 1e-9) else "filled"
        assert span.attributes[conv.TRADING_OUTCOME] == expected_outcome
        adverse = average > requested_price if side == "BUY" else average < requested_price
        signed = span.attributes[conv.TRADING_SLIPPAGE_BP]
        assert (signed > 0) == adverse
        assert cap.metric_value("botmon.trade.slippage") == pytest.approx(abs(signed))
