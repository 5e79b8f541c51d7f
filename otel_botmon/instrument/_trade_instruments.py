"""The tracer and metric instruments trade instrumentation records into.

One object for the process: its tracer and instruments are proxies that follow
``configure()`` and ``shutdown()`` (``otel_botmon._state``), and a listener on the state
keeps ``lean`` (the pipeline's lean trade aggregation, see ``_trade_metrics``) and
``pipeline`` current. The SDK's instruments (``duration`` ... ``slippage``) record a
trade when there is no lean aggregation (``BOTMON_TRADE_METRICS=sdk``, a reader that
wants deltas, or providers the application installed itself).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace as _trace_api
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import Tracer

from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon._state import STATE


class TradeInstruments:
    """The tracer and instruments trades record into (proxies), and the lean path."""

    __slots__ = ("duration", "lean", "notional", "pipeline", "pnl", "positions", "slippage",
                 "tracer", "trades", "volume")

    def __init__(self) -> None:
        self.pipeline = False
        self.lean: Any = None
        self.tracer: Tracer = telemetry.tracer()
        self.duration: Any = telemetry.instrument(conv.TRADE_DURATION)
        self.trades: Any = telemetry.instrument(conv.TRADES)
        self.volume: Any = telemetry.instrument(conv.TRADE_VOLUME)
        self.notional: Any = telemetry.instrument(conv.TRADE_NOTIONAL)
        self.slippage: Any = telemetry.instrument(conv.TRADE_SLIPPAGE)
        self.pnl: Any = telemetry.instrument(conv.PNL_REALIZED)
        self.positions: Any = telemetry.instrument(conv.POSITIONS_CLOSED)
        self.follow()

    def follow(self) -> None:
        """Take the current pipeline's lean aggregation (a state listener)."""
        tel = STATE.current
        self.pipeline = tel is not None
        self.lean = tel.trade_metrics if tel is not None else None

    def idle(self) -> bool:
        """True when nothing can see a trade: no pipeline, and the application has
        installed no global tracer or meter provider (the API's proxies forward to
        nothing). Checked per trade: a provider installed later is seen at once."""
        return (
            not self.pipeline
            and _trace_api._TRACER_PROVIDER is None
            and _metrics_api._METER_PROVIDER is None
        )


_INSTRUMENTS = TradeInstruments()
STATE.on_change(_INSTRUMENTS.follow)


def instruments() -> TradeInstruments:
    """The process's trade instruments (the same object, always current)."""
    return _INSTRUMENTS
