"""The tracer and metric instruments trade instrumentation records into.

Resolved lazily and cached per ``telemetry.generation()``: a ``configure()`` or
``shutdown()`` changes the generation, and the next trade picks up the new providers.

A pipeline built by ``configure()`` has a lean aggregation for the trade metrics
(``lean``, see ``_trade_metrics``); the SDK's instruments are used when it has none
(``BOTMON_TRADE_METRICS=sdk``) or when otel_botmon records into providers the
application installed itself.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace as _trace_api
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import Tracer

from otel_botmon import conventions as conv
from otel_botmon import telemetry


class TradeInstruments:
    """The tracer and instruments of one telemetry generation."""

    __slots__ = ("duration", "generation", "lean", "notional", "pipeline", "pnl",
                 "positions", "slippage", "tracer", "trades", "volume")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        tel = telemetry.get_telemetry()
        self.pipeline = tel is not None
        self.lean: Any = tel.trade_metrics if tel is not None else None
        self.tracer: Tracer = telemetry.get_tracer()
        sdk = self.lean is None
        self.duration: Any = telemetry.instrument(conv.TRADE_DURATION) if sdk else None
        self.trades: Any = telemetry.instrument(conv.TRADES) if sdk else None
        self.volume: Any = telemetry.instrument(conv.TRADE_VOLUME) if sdk else None
        self.notional: Any = telemetry.instrument(conv.TRADE_NOTIONAL) if sdk else None
        self.slippage: Any = telemetry.instrument(conv.TRADE_SLIPPAGE) if sdk else None
        self.pnl: Any = telemetry.instrument(conv.PNL_REALIZED)
        self.positions: Any = telemetry.instrument(conv.POSITIONS_CLOSED)

    def idle(self) -> bool:
        """True when nothing can see a trade: no pipeline, and the application has
        installed no global tracer or meter provider (the API's proxies forward to
        nothing). Checked per trade: a provider installed later is seen at once."""
        return (
            not self.pipeline
            and _trace_api._TRACER_PROVIDER is None
            and _metrics_api._METER_PROVIDER is None
        )


_cache: TradeInstruments | None = None


def instruments() -> TradeInstruments:
    # Re-resolved whenever configure()/shutdown() changes the providers.
    global _cache
    cached = _cache
    generation = telemetry.generation()
    if cached is None or cached.generation != generation:
        cached = _cache = TradeInstruments(generation)
    return cached
