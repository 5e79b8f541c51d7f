"""Functions run in ``multiprocessing`` and joblib workers (importable by spawn and
forkserver workers, which import their target anew)."""

from __future__ import annotations

import os

from otel_botmon import telemetry
from otel_botmon.instrument.trading import trade


def configure(endpoint: str) -> None:
    """The worker configures telemetry itself (a pool's initializer) and never flushes."""
    telemetry.configure("pool-worker", exchange="binance", otlp_endpoint=endpoint,
                        export_interval_s=60)


def record(symbol: str) -> int:
    """One trade; returns the worker's pid. Nothing is flushed here."""
    with trade(symbol=symbol, side="BUY", quantity=1, price=10.0):
        pass
    return os.getpid()


def configure_and_record(endpoint: str, symbol: str) -> int:
    """For joblib: the task configures its worker on first use."""
    if telemetry.get_telemetry() is None:
        configure(endpoint)
    return record(symbol)
