"""The tracer and metric instruments trade instrumentation records into.

Resolved lazily and cached per ``telemetry.generation()``: a ``configure()`` or
``shutdown()`` changes the generation, and the next trade picks up the new providers.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Tracer

from otel_botmon import conventions as conv
from otel_botmon import telemetry


class TradeInstruments:
    """The tracer and instruments of one telemetry generation."""

    __slots__ = ("duration", "generation", "notional", "pnl", "positions", "slippage",
                 "tracer", "trades", "volume")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.tracer: Tracer = telemetry.get_tracer()
        self.duration: Any = telemetry.instrument(conv.TRADE_DURATION)
        self.trades: Any = telemetry.instrument(conv.TRADES)
        self.volume: Any = telemetry.instrument(conv.TRADE_VOLUME)
        self.notional: Any = telemetry.instrument(conv.TRADE_NOTIONAL)
        self.slippage: Any = telemetry.instrument(conv.TRADE_SLIPPAGE)
        self.pnl: Any = telemetry.instrument(conv.PNL_REALIZED)
        self.positions: Any = telemetry.instrument(conv.POSITIONS_CLOSED)


_cache: TradeInstruments | None = None


def instruments() -> TradeInstruments:
    # Re-resolved whenever configure()/shutdown() changes the providers.
    global _cache
    cached = _cache
    generation = telemetry.generation()
    if cached is None or cached.generation != generation:
        cached = _cache = TradeInstruments(generation)
    return cached
