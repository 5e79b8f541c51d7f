"""Symbol cardinality is capped by the SDK limit configure() applies."""

from __future__ import annotations

from typing import Any

from otel_botmon import conventions as conv
from otel_botmon.instrument.trading import trade


def test_more_symbols_than_the_limit_fold_into_one_overflow_series(telemetry: Any) -> None:
    @trade(side="BUY")
    def place(symbol: str, quantity: float, price: float) -> None:
        pass

    for i in range(conv.CARDINALITY_LIMIT + 500):
        place(f"SYM{i}", 1.0, 2.0)

    for name in ("botmon.trades", "botmon.trade.duration", "botmon.trade.volume"):
        points = telemetry.metric_points(name)
        assert len(points) <= conv.CARDINALITY_LIMIT + 1, name
        overflow = [p for p in points if p.attributes.get("otel.metric.overflow")]
        assert len(overflow) == 1, name
    total = sum(p.value for p in telemetry.metric_points("botmon.trades"))
    assert total == conv.CARDINALITY_LIMIT + 500  # nothing lost, only folded
