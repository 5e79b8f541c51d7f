"""A Freqtrade strategy monitored by otel_botmon: one mixin, nothing else to change.

Install: ``pip install 'otel-botmon[freqtrade]'``. Run it like any strategy::

    freqtrade trade --dry-run --strategy BotmonSmaStrategy \
        --strategy-path examples/freqtrade_strategies

The directory holds strategies only: Freqtrade imports every ``.py`` file of a
strategy path to list strategies (``list-strategies``, the REST API, FreqUI, and
``hyperopt`` when it saves the parameters), and the guide's examples in ``examples/``
run when imported.

Every order becomes a ``trade {pair}`` span from confirm to fill (or cancel), with
``botmon.trades`` by outcome, volume, notional and slippage from the confirmed rate;
closed trades feed ``botmon.pnl.realized`` and the win rate; each loop beats the
``TradingEngineCheck`` in ``strategy.botmon_engine_check``, exported as
``botmon.health.status{health.component="trading_engine"}``. Point the exporters at your
collector with the usual variables, for example
``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318``. To run it without an account,
against ``botmon demo --exchange-only``, see the README's Freqtrade section (the config
``tests/examples/test_freqtrade_example.py`` runs it with).

The strategy itself is deliberately simple (a moving-average cross, pandas only, no
TA-Lib): it is here to show the wiring, not to make money.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from freqtrade.strategy import IStrategy
from pandas import DataFrame

from otel_botmon.integrations.freqtrade import BotmonStrategyMixin


class BotmonSmaStrategy(BotmonStrategyMixin, IStrategy):
    """Long when the fast average crosses above the slow one; exit on the reverse."""

    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.05}
    stoploss = -0.05
    startup_candle_count = 30
    can_short = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        dataframe["sma_fast"] = dataframe["close"].rolling(10).mean()
        dataframe["sma_slow"] = dataframe["close"].rolling(30).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        above = dataframe["sma_fast"] > dataframe["sma_slow"]
        dataframe.loc[above & ~above.shift(1, fill_value=False), "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict[str, Any]) -> DataFrame:
        below = dataframe["sma_fast"] < dataframe["sma_slow"]
        dataframe.loc[below & ~below.shift(1, fill_value=False), "exit_long"] = 1
        return dataframe

    def confirm_trade_entry(
        self, pair: str, order_type: str, amount: float, rate: float, time_in_force: str,
        current_time: datetime, entry_tag: str | None, side: str, **kwargs: Any,
    ) -> bool:
        # Your own checks stay yours: a False here places no order and records nothing.
        return amount > 0
