"""The Freqtrade mixin, driven through real Freqtrade callbacks and persistence objects.

The strategy is examples/freqtrade_strategies/botmon_sma_strategy.py; trades and orders
are Freqtrade's own ``Trade`` / ``Order`` rows in an in-memory SQLite database
(``init_db("sqlite://")``), moved through their states the way Freqtrade's bot does
(``Trade.update_trade``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("freqtrade")

from freqtrade.enums import RunMode
from freqtrade.persistence import Order, Trade, init_db

import otel_botmon
from otel_botmon import conventions as conv
from otel_botmon import telemetry
from otel_botmon.instrument import orders
from otel_botmon.observe.health import HealthStatus
from otel_botmon.testing import TelemetryCapture, capture

STRATEGY_DIR = Path(__file__).resolve().parents[3] / "examples" / "freqtrade_strategies"
EXAMPLE = STRATEGY_DIR / "botmon_sma_strategy.py"
PAIR = "BTC/USDT"
UTC = UTC


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("botmon_sma_strategy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STRATEGY = _example().BotmonSmaStrategy
CONFIG: dict[str, Any] = {
    "runmode": RunMode.DRY_RUN, "dry_run": True, "stake_currency": "USDT",
    "exchange": {"name": "binance", "key": "", "secret": ""}, "bot_name": "ft-test",
    "candle_type_def": "spot", "trading_mode": "spot", "margin_mode": "",
}


@pytest.fixture(autouse=True)
def _database() -> Iterator[None]:
    init_db("sqlite://")
    orders._BOOK.clear()
    yield
    Trade.session.remove()
    orders._BOOK.clear()


def _started(cls: Any = STRATEGY) -> Any:
    strategy = cls(dict(CONFIG))
    strategy.ft_bot_start()
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    return strategy


def _confirm_entry(strategy: Any, amount: float = 0.01, rate: float = 45000.0) -> bool:
    return bool(strategy.confirm_trade_entry(
        pair=PAIR, order_type="limit", amount=amount, rate=rate, time_in_force="GTC",
        current_time=datetime.now(UTC), entry_tag=None, side="long",
    ))


def _placed_entry(order_id: str = "ex-1", price: float = 45000.0) -> tuple[Trade, Order]:
    """What Freqtrade's execute_entry stores after placing the order."""
    now = datetime.now(UTC)
    trade = Trade(
        pair=PAIR, stake_amount=450.0, amount=0.01, amount_requested=0.01, fee_open=0.001,
        fee_close=0.001, is_open=True, open_date=now, open_rate=price, exchange="binance",
        strategy="BotmonSmaStrategy", timeframe=5, leverage=1.0, is_short=False,
    )
    order = Order(
        ft_order_side="buy", ft_pair=PAIR, ft_is_open=True, ft_amount=0.01, ft_price=price,
        order_id=order_id, status="open", symbol=PAIR, order_type="limit", side="buy",
        price=price, amount=0.01, filled=0.0, remaining=0.01, cost=0.0, order_date=now,
    )
    trade.orders.append(order)
    Trade.session.add(trade)
    Trade.commit()
    return trade, order


def _fill(trade: Trade, order: Order, average: float, filled: float | None = None) -> None:
    """What Freqtrade does when the exchange reports the order closed."""
    order.filled = order.amount if filled is None else filled
    order.remaining = (order.amount or 0.0) - order.filled
    order.average, order.cost = average, average * order.filled
    order.status, order.ft_is_open = "closed", False
    order.order_filled_date = datetime.now(UTC)
    trade.update_trade(order)
    Trade.commit()


def _placed_exit(trade: Trade, price: float) -> Order:
    order = Order(
        ft_order_side="sell", ft_pair=PAIR, ft_is_open=True, ft_amount=0.01, ft_price=price,
        order_id="ex-2", status="open", symbol=PAIR, order_type="limit", side="sell",
        price=price, amount=0.01, filled=0.0, remaining=0.01, cost=0.0,
        order_date=datetime.now(UTC),
    )
    trade.orders.append(order)
    Trade.commit()
    return order


def test_a_round_trip_is_two_trades_with_slippage_and_a_closed_position(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    assert _confirm_entry(strategy, rate=45000.0)
    trade, entry = _placed_entry()
    _fill(trade, entry, average=45045.0)
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))

    assert strategy.confirm_trade_exit(
        pair=PAIR, trade=trade, order_type="limit", amount=0.01, rate=46000.0,
        time_in_force="GTC", exit_reason="roi", current_time=datetime.now(UTC),
    )
    exit_order = _placed_exit(trade, 46000.0)
    _fill(trade, exit_order, average=45954.0)
    assert not trade.is_open and trade.close_profit_abs is not None
    strategy.order_filled(pair=PAIR, trade=trade, order=exit_order,
                          current_time=datetime.now(UTC))

    buy, sell = capture_telemetry.spans("trade BTC/USDT")
    assert (buy.attributes or {})[conv.TRADING_SIDE] == "BUY"
    assert (buy.attributes or {})[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)
    assert (sell.attributes or {})[conv.TRADING_SIDE] == "SELL"
    assert (sell.attributes or {})[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)
    filled = capture_telemetry.metric_points("botmon.trades", trading_outcome="filled")
    assert sum(p.value for p in filled) == 2
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.close_profit_abs
    )
    assert capture_telemetry.metric_value(
        "botmon.positions.closed", trading_result="win"
    ) == 1
    assert orders.open_order_count() == 0


def test_a_vetoed_entry_opens_nothing(capture_telemetry: TelemetryCapture) -> None:
    strategy = _started()
    assert not _confirm_entry(strategy, amount=0.0)  # the example refuses amount 0
    assert orders.open_order_count() == 0


def test_a_timeout_the_strategy_asks_for_cancels_the_order(
    capture_telemetry: TelemetryCapture,
) -> None:
    class Impatient(STRATEGY):  # type: ignore[misc, valid-type]
        def check_entry_timeout(self, pair: str, trade: Any, order: Any,
                                current_time: datetime, **kwargs: Any) -> bool:
            return True

    strategy = _started(Impatient)
    _confirm_entry(strategy)
    trade, entry = _placed_entry()
    entry.filled = 0.004  # partly filled when the timeout hits
    assert strategy.check_entry_timeout(pair=PAIR, trade=trade, order=entry,
                                        current_time=datetime.now(UTC))

    span = capture_telemetry.span("trade BTC/USDT")
    assert (span.attributes or {})[conv.TRADING_OUTCOME] == "partial"
    assert (span.attributes or {})[conv.TRADING_CANCEL_REASON] == "check_entry_timeout"
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(0.004)


def test_the_loop_finds_orders_freqtrade_canceled_without_a_callback(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    _confirm_entry(strategy)
    _, entry = _placed_entry()
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    assert orders.open_order_count() == 1  # still open on the exchange

    entry.status, entry.ft_is_open = "canceled", False  # unfilledtimeout from the config
    Trade.commit()
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="canceled") == 1

    Trade.session.query(Trade).delete()
    _confirm_entry(strategy)  # and this one never reached the exchange at all
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    assert orders.open_order_count() == 1  # for all the loop knows, still being placed
    strategy.bot_loop_start(current_time=datetime.now(UTC) + timedelta(seconds=61))
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="canceled") == 2
    assert orders.open_order_count() == 0


def test_a_fill_without_a_confirm_is_still_a_trade_timed_from_the_order(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    trade, entry = _placed_entry()  # e.g. placed before a restart
    entry.order_date = datetime.now(UTC) - timedelta(seconds=3)
    _fill(trade, entry, average=45000.0)
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))

    span = capture_telemetry.span("trade BTC/USDT")
    assert (span.attributes or {})[conv.TRADING_OUTCOME] == "filled"
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 >= 3.0
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(0.01)


def test_each_loop_beats_the_engine_check(capture_telemetry: TelemetryCapture) -> None:
    strategy = _started()
    check = strategy.botmon_engine_check
    assert check.age_s() is not None and check.max_age_s == 60.0
    result = asyncio.run(check(None))
    assert result["status"] is HealthStatus.HEALTHY


def test_bot_start_configures_otel_botmon_when_nothing_did() -> None:
    assert telemetry.get_telemetry() is None
    _started()
    tel = telemetry.get_telemetry()
    assert tel is not None
    attrs = tel.resource.attributes
    assert attrs["service.name"] == "freqtrade" and attrs["bot.name"] == "ft-test"
    assert attrs["bot.exchange"] == "binance" and attrs["bot.strategy"] == "BotmonSmaStrategy"


def test_the_exchanges_ccxt_instances_are_handed_to_instrument_ccxt(
    capture_telemetry: TelemetryCapture, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.exchange import Exchange

    exchange = Exchange(dict(CONFIG), validate=False)  # real ccxt objects, no network
    try:
        seen: list[Any] = []
        monkeypatch.setattr(otel_botmon, "instrument_ccxt", seen.append, raising=False)
        strategy = STRATEGY(dict(CONFIG))
        strategy.dp = DataProvider(dict(CONFIG), exchange)
        strategy.ft_bot_start()
        assert [type(api).__module__ for api in seen] == ["ccxt.binance", "ccxt.pro.binance"]

        monkeypatch.delattr(otel_botmon, "instrument_ccxt")
        with caplog.at_level(logging.INFO, logger="otel_botmon"):
            STRATEGY(dict(CONFIG)).ft_bot_start()  # an older otel_botmon: logged, no error
        assert any("not instrumented" in r.getMessage() for r in caplog.records)
    finally:
        exchange.close()


def test_the_strategys_own_errors_pass_through_and_ours_never_do(
    capture_telemetry: TelemetryCapture,
) -> None:
    class Broken(STRATEGY):  # type: ignore[misc, valid-type]
        def confirm_trade_exit(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("strategy bug")

    strategy = _started(Broken)
    with pytest.raises(RuntimeError, match="strategy bug"):  # Freqtrade's to handle
        strategy.confirm_trade_exit(pair=PAIR, trade=None)
    strategy.order_filled(pair=PAIR, trade=None, order=object(), current_time=None)
    assert capture_telemetry.metric_value(
        "botmon.internal.errors", botmon_component="freqtrade"
    ) == 1


def test_backtesting_records_nothing(capture_telemetry: TelemetryCapture) -> None:
    strategy = STRATEGY({**CONFIG, "runmode": RunMode.BACKTEST})
    strategy.ft_bot_start()
    assert _confirm_entry(strategy)
    assert orders.open_order_count() == 0
    assert capture_telemetry.spans() == []


def test_the_loop_records_a_rejected_or_partly_filled_order_as_such(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    _confirm_entry(strategy)
    _, entry = _placed_entry("ex-rejected")
    entry.status, entry.ft_is_open = "rejected", False
    Trade.commit()
    strategy.bot_loop_start(current_time=datetime.now(UTC))

    Trade.session.query(Trade).delete()
    _confirm_entry(strategy)
    _, entry = _placed_entry("ex-partial")
    entry.status, entry.ft_is_open, entry.filled, entry.average = "canceled", False, 0.003, 1.0
    Trade.commit()
    strategy.bot_loop_start(current_time=datetime.now(UTC))

    outcomes = sorted((s.attributes or {})[conv.TRADING_OUTCOME] for s in capture_telemetry.spans())
    assert outcomes == ["partial", "rejected"]
    assert capture_telemetry.metric_value("botmon.trade.volume") == pytest.approx(0.003)


def test_a_confirm_again_after_a_failed_placement_cancels_the_one_before(
    capture_telemetry: TelemetryCapture,
) -> None:
    # create_order raised (DependencyException, insufficient funds): no order reached the
    # database, and Freqtrade confirms the same pair again on its next loop
    strategy = _started()
    for _ in range(3):
        assert _confirm_entry(strategy)
    outcomes = sorted((s.attributes or {})[conv.TRADING_OUTCOME] for s in capture_telemetry.spans())
    assert outcomes == ["canceled", "canceled"]  # at once, not as expired after the TTL
    assert orders.open_order_count() == 1  # the newest, which may still be placed
    trade, entry = _placed_entry("ex-3")
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))
    assert orders.open_order_count() == 0
    outcomes = sorted((s.attributes or {})[conv.TRADING_OUTCOME] for s in capture_telemetry.spans())
    # three confirms, one order: the newest confirm's, finished by its fill
    assert outcomes.count("canceled") == 2 and len(outcomes) == 3


def test_a_fill_the_loop_found_first_is_recorded_once(
    capture_telemetry: TelemetryCapture,
) -> None:
    # Freqtrade commits a filled order before calling order_filled; its loop (another
    # thread when the order came from the REST API) can look in between.
    strategy = _started()
    _confirm_entry(strategy)
    trade, entry = _placed_entry()
    _fill(trade, entry, average=45000.0)
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))

    span = capture_telemetry.span("trade BTC/USDT")
    assert (span.attributes or {})[conv.TRADING_OUTCOME] == "filled"
    assert capture_telemetry.metric_value("botmon.trades") == 1
    assert orders.open_order_count() == 0


def test_an_exit_the_loop_found_first_is_one_trade_and_one_closed_position(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    _confirm_entry(strategy)
    trade, entry = _placed_entry()
    _fill(trade, entry, average=45000.0)
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))
    assert strategy.confirm_trade_exit(
        pair=PAIR, trade=trade, order_type="limit", amount=0.01, rate=44000.0,
        time_in_force="GTC", exit_reason="stop_loss", current_time=datetime.now(UTC),
    )
    strategy.bot_loop_start(current_time=datetime.now(UTC))  # nothing placed yet: waits
    exit_order = _placed_exit(trade, 44000.0)
    _fill(trade, exit_order, average=44000.0)  # the trade is closed now
    strategy.bot_loop_start(current_time=datetime.now(UTC))
    strategy.order_filled(pair=PAIR, trade=trade, order=exit_order,
                          current_time=datetime.now(UTC))

    sides = [(s.attributes or {})[conv.TRADING_SIDE] for s in capture_telemetry.spans()]
    assert sides == ["BUY", "SELL"]
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 2
    assert capture_telemetry.metric_value(
        "botmon.positions.closed", trading_result="loss") == 1
    assert orders.open_order_count() == 0


def test_the_heartbeat_is_exported_as_the_trading_engines_health(
    capture_telemetry: TelemetryCapture,
) -> None:
    _started()
    point = capture_telemetry.metric_point(
        "botmon.health.status", health_component="trading_engine"
    )
    assert point.value == HealthStatus.HEALTHY.gauge_value


def test_the_confirmed_amount_is_cut_to_the_markets_amount_precision(
    capture_telemetry: TelemetryCapture,
) -> None:
    import ccxt
    from freqtrade.data.dataprovider import DataProvider
    from freqtrade.exchange import Exchange

    from otel_botmon.demo.serve import ExchangeThread, local_urls

    with ExchangeThread("key", "secret") as server:  # LOT_SIZE stepSize 0.00001
        urls = local_urls(ccxt.binance().urls["api"], server.base_url)
        config = {**CONFIG, "exchange": {**CONFIG["exchange"], "ccxt_config": {
            "urls": {"api": urls}, "options": {"fetchMarkets": {"types": ["spot"]}}}}}
        exchange = Exchange(config, validate=False)
        try:
            exchange.reload_markets(True, load_leverage_tiers=False)
            strategy = STRATEGY(config)
            strategy.dp = DataProvider(config, exchange)
            strategy.ft_bot_start()
            assert _confirm_entry(strategy, amount=0.0123456789)
            trade, entry = _placed_entry()
            entry.amount = entry.ft_amount = 0.01234  # what Exchange.create_order places
            _fill(trade, entry, average=45000.0)
            strategy.order_filled(pair=PAIR, trade=trade, order=entry,
                                  current_time=datetime.now(UTC))
        finally:
            exchange.close()

    attributes = capture_telemetry.span("trade BTC/USDT").attributes or {}
    assert attributes[conv.TRADING_QUANTITY] == pytest.approx(0.01234)
    assert attributes[conv.TRADING_OUTCOME] == "filled"


def _by_value_like_hyperopt(cls: type) -> list[Any]:
    """Register with cloudpickle, as Freqtrade's hyperopt does before its workers start,
    the module of each base of ``cls``, walking up the bases but not into ``IStrategy``."""
    import sys

    import cloudpickle

    registered = []
    for base in cls.__bases__:
        if base.__name__ == "IStrategy":
            continue
        module = sys.modules.get(base.__module__)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)
            registered.append(module)
        registered += _by_value_like_hyperopt(base)
    return registered


def _round_trip(payload: dict[str, Any]) -> list[str]:
    return sorted(payload)


def test_hyperopt_workers_get_the_strategy(capture_telemetry: TelemetryCapture) -> None:
    # `freqtrade hyperopt -j 2` cloudpickles the strategy (with its backtest: dicts,
    # builtin types) into joblib's loky workers. The strategy comes from a file Freqtrade
    # loads itself, so its class goes by value, and with it its bases' modules.
    import cloudpickle
    from freqtrade.resolvers import StrategyResolver
    from joblib import Parallel, delayed, wrap_non_picklable_objects
    from joblib.externals.loky import get_reusable_executor

    config = {**CONFIG, "runmode": RunMode.HYPEROPT, "strategy": "BotmonSmaStrategy",
              "strategy_path": str(EXAMPLE.parent), "timeframe": "5m", "stake_amount": 10,
              "pairlists": [{"method": "StaticPairList"}], "user_data_dir": EXAMPLE.parent}
    strategy = StrategyResolver.load_strategy(config)
    registered = _by_value_like_hyperopt(type(strategy))
    try:
        run = delayed(wrap_non_picklable_objects(_round_trip))
        result = Parallel(n_jobs=2)(run({"strategy": strategy, "kind": dict}) for _ in range(1))
        assert result == [["kind", "strategy"]]
    finally:
        for module in registered:
            if module.__name__ in cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES:
                cloudpickle.unregister_pickle_by_value(module)
        get_reusable_executor().shutdown(wait=True)
    assert capture_telemetry.spans() == []


def test_the_mixin_after_istrategy_is_an_error_not_a_silent_strategy() -> None:
    from freqtrade.strategy import IStrategy

    from otel_botmon.integrations.freqtrade import BotmonStrategyMixin

    with pytest.raises(TypeError, match="consistent method resolution"):
        type("Reversed", (IStrategy, BotmonStrategyMixin), {})


def test_the_example_strategy_directory_holds_strategies_only() -> None:
    # Freqtrade imports every .py file of a strategy path to list its strategies
    # (list-strategies, the REST API, and hyperopt when it saves its parameters): a guide
    # example there ran its servers and loops inside Freqtrade, and hyperopt hung at exit.
    from freqtrade.resolvers import StrategyResolver

    listed = StrategyResolver._search_all_objects(STRATEGY_DIR, enum_failed=True)
    files = {entry["location"].name for entry in listed if entry["class"] is not None}
    assert files == {path.name for path in STRATEGY_DIR.glob("*.py")}
    assert "BotmonSmaStrategy" in {entry["name"] for entry in listed}


def test_callbacks_that_raise_still_beat_and_record_the_fill(
    capture_telemetry: TelemetryCapture, caplog: pytest.LogCaptureFixture,
) -> None:
    # Freqtrade calls these through strategy_safe_wrapper: it logs the strategy's error and
    # goes on. The start, the loop and the fill happened all the same.
    from freqtrade.strategy.strategy_wrapper import strategy_safe_wrapper

    class Buggy(STRATEGY):  # type: ignore[misc, valid-type]
        def bot_loop_start(self, current_time: datetime, **kwargs: Any) -> None:
            raise ZeroDivisionError("division by zero")

        def order_filled(self, pair: str, trade: Any, order: Any, current_time: datetime,
                         **kwargs: Any) -> None:
            raise ValueError("bookkeeping bug")

    strategy = Buggy(dict(CONFIG))
    strategy.ft_bot_start()
    assert strategy.botmon_engine_check.age_s() is None
    strategy_safe_wrapper(strategy.bot_loop_start, supress_error=True)(
        current_time=datetime.now(UTC))
    assert strategy.botmon_engine_check.age_s() is not None  # the loop runs: it beats

    assert _confirm_entry(strategy)
    trade, entry = _placed_entry()
    _fill(trade, entry, average=45000.0)
    # As Freqtrade calls it (trade.pair loads the committed trade before its deepcopy).
    strategy_safe_wrapper(strategy.order_filled, supress_error=True)(
        pair=trade.pair, trade=trade, order=entry, current_time=datetime.now(UTC))
    exit_order = _placed_exit(trade, 46000.0)
    _fill(trade, exit_order, average=46000.0)
    strategy_safe_wrapper(strategy.order_filled, supress_error=True)(
        pair=trade.pair, trade=trade, order=exit_order, current_time=datetime.now(UTC))

    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 2
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.close_profit_abs)
    assert capture_telemetry.metric_value("botmon.positions.closed", trading_result="win") == 1
    assert any("bookkeeping bug" in r.getMessage() for r in caplog.records)  # Freqtrade's log


def _order(side: str, order_id: str, amount: float, price: float) -> Order:
    return Order(
        ft_order_side=side, ft_pair=PAIR, ft_is_open=True, ft_amount=amount, ft_price=price,
        order_id=order_id, status="open", symbol=PAIR, order_type="limit", side=side,
        price=price, amount=amount, filled=0.0, remaining=amount, cost=0.0,
        order_date=datetime.now(UTC),
    )


def _filled(strategy: Any, trade: Trade, order: Order, average: float) -> None:
    trade.orders.append(order)
    Trade.commit()
    _fill(trade, order, average=average)
    strategy.order_filled(pair=trade.pair, trade=trade, order=order,
                          current_time=datetime.now(UTC))


def test_a_leveraged_short_is_a_sell_then_a_buy_with_freqtrades_profit(
    capture_telemetry: TelemetryCapture,
) -> None:
    config = {**CONFIG, "trading_mode": "futures", "margin_mode": "isolated",
              "candle_type_def": "futures"}
    strategy = STRATEGY(config)
    strategy.ft_bot_start()
    assert strategy.confirm_trade_entry(
        pair=PAIR, order_type="limit", amount=0.03, rate=45000.0, time_in_force="GTC",
        current_time=datetime.now(UTC), entry_tag=None, side="short")
    trade = Trade(
        pair=PAIR, stake_amount=450.0, amount=0.03, amount_requested=0.03, fee_open=0.0005,
        fee_close=0.0005, is_open=True, open_date=datetime.now(UTC), open_rate=45000.0,
        exchange="binance", strategy="BotmonSmaStrategy", timeframe=5, leverage=3.0,
        is_short=True, trading_mode="futures", interest_rate=0.0,
    )
    Trade.session.add(trade)
    _filled(strategy, trade, _order("sell", "s-1", 0.03, 45000.0), average=44955.0)
    assert strategy.confirm_trade_exit(
        pair=PAIR, trade=trade, order_type="limit", amount=0.03, rate=44000.0,
        time_in_force="GTC", exit_reason="roi", current_time=datetime.now(UTC))
    _filled(strategy, trade, _order("buy", "s-2", 0.03, 44000.0), average=44044.0)
    assert not trade.is_open and trade.close_profit_abs > 0  # the price fell: a win

    entry, exit_ = capture_telemetry.spans("trade BTC/USDT")
    assert (entry.attributes or {})[conv.TRADING_SIDE] == "SELL"
    assert (exit_.attributes or {})[conv.TRADING_SIDE] == "BUY"
    for span in (entry, exit_):  # both fills 10 bp worse than confirmed
        assert (span.attributes or {})[conv.TRADING_SLIPPAGE_BP] == pytest.approx(10.0)
        assert (span.attributes or {})[conv.TRADING_QUANTITY] == pytest.approx(0.03)
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.close_profit_abs)
    assert capture_telemetry.metric_value("botmon.positions.closed", trading_result="win") == 1


def _dca_then_partial_exit(strategy: Any, part_price: float = 46000.0) -> Trade:
    """Entry at 45000, a DCA buy at 44000, then half the position sold at ``part_price``.

    position_adjustment_enable: adjust_trade_position's orders come with no confirm
    (Freqtrade confirms only a trade's first entry and its full exit).
    """
    assert _confirm_entry(strategy, amount=0.01, rate=45000.0)
    trade, entry = _placed_entry()
    _fill(trade, entry, average=45000.0)
    strategy.order_filled(pair=PAIR, trade=trade, order=entry, current_time=datetime.now(UTC))
    _filled(strategy, trade, _order("buy", "dca-1", 0.01, 44000.0), average=44000.0)
    _filled(strategy, trade, _order("sell", "part-1", 0.01, part_price), average=part_price)
    assert trade.is_open and trade.amount == pytest.approx(0.01)
    return trade


def _final_exit(strategy: Any, trade: Trade, price: float) -> None:
    assert strategy.confirm_trade_exit(
        pair=PAIR, trade=trade, order_type="limit", amount=0.01, rate=price,
        time_in_force="GTC", exit_reason="stop_loss", current_time=datetime.now(UTC))
    _filled(strategy, trade, _order("sell", "exit-1", 0.01, price), average=price)
    assert not trade.is_open


def test_dca_and_a_partial_exit_are_one_trade_each_and_one_closed_position(
    capture_telemetry: TelemetryCapture,
) -> None:
    strategy = _started()
    trade = _dca_then_partial_exit(strategy, part_price=46000.0)
    # The partial exit's profit is realized now, not when (or if) the trade closes.
    assert trade.realized_profit > 0
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.realized_profit)
    assert capture_telemetry.metric_value("botmon.positions.closed") == 0

    _final_exit(strategy, trade, 43000.0)

    sides = [(s.attributes or {})[conv.TRADING_SIDE] for s in capture_telemetry.spans()]
    assert sides == ["BUY", "BUY", "SELL", "SELL"]
    assert capture_telemetry.metric_value("botmon.trades", trading_outcome="filled") == 4
    # Freqtrade's close_profit_abs of a closed trade is the sum over all its exits: the
    # partial exit's profit is not counted a second time at the close.
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.close_profit_abs)
    # One closed position, a loss by the whole trade's profit (the part sold at a profit
    # is no win of its own).
    assert trade.close_profit_abs < 0
    assert capture_telemetry.metric_value("botmon.positions.closed") == 1
    assert capture_telemetry.metric_value(
        "botmon.positions.closed", trading_result="loss") == 1
    assert orders.open_order_count() == 0


def test_a_restart_between_a_partial_exit_and_the_close_counts_the_profit_once(
    capture_telemetry: TelemetryCapture,
) -> None:
    trade = _dca_then_partial_exit(_started(), part_price=46500.0)
    partial = capture_telemetry.metric_value("botmon.pnl.realized")
    assert partial == pytest.approx(trade.realized_profit)

    # A new bot process, which never saw the partial exit, sells another part...
    _filled(_started(), trade, _order("sell", "part-2", 0.005, 46000.0), average=46000.0)
    assert trade.is_open
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.realized_profit)
    # ...and a third closes the trade.
    restarted = _started()
    assert restarted.confirm_trade_exit(
        pair=PAIR, trade=trade, order_type="limit", amount=0.005, rate=44000.0,
        time_in_force="GTC", exit_reason="roi", current_time=datetime.now(UTC))
    _filled(restarted, trade, _order("sell", "exit-1", 0.005, 44000.0), average=44000.0)
    assert not trade.is_open

    # What each process recorded adds up to the trade's profit.
    assert capture_telemetry.metric_value("botmon.pnl.realized") == pytest.approx(
        trade.close_profit_abs)
    assert capture_telemetry.metric_value(
        "botmon.positions.closed", trading_result="win") == 1
    assert capture_telemetry.metric_value("botmon.positions.closed") == 1


_PRICE = st.integers(min_value=40000, max_value=50000).map(float)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dca=_PRICE, exits=st.lists(_PRICE, min_size=1, max_size=3), last=_PRICE)
def test_realized_pnl_follows_each_exit_and_adds_up_to_freqtrades_profit(
    dca: float, exits: list[float], last: float,
) -> None:
    # Entry and DCA of 0.02 each, then up to three exits of 0.01 each leaving the trade
    # open, then the close: after every exit botmon.pnl.realized is Freqtrade's
    # realized_profit, and after the close its close_profit_abs, with one closed position.
    init_db("sqlite://")
    orders._BOOK.clear()
    try:
        with capture() as cap:
            strategy = _started()
            assert _confirm_entry(strategy, amount=0.02, rate=45000.0)
            trade, entry = _placed_entry()
            entry.amount = entry.ft_amount = trade.amount = 0.02
            _fill(trade, entry, average=45000.0)
            strategy.order_filled(pair=PAIR, trade=trade, order=entry,
                                  current_time=datetime.now(UTC))
            _filled(strategy, trade, _order("buy", "dca-1", 0.02, dca), average=dca)
            for n, price in enumerate(exits):
                _filled(strategy, trade, _order("sell", f"part-{n}", 0.01, price),
                        average=price)
                assert trade.is_open
                assert cap.metric_value("botmon.pnl.realized") == pytest.approx(
                    trade.realized_profit, abs=1e-9)
                assert cap.metric_value("botmon.positions.closed") == 0
            rest = trade.amount
            _filled(strategy, trade, _order("sell", "exit-1", rest, last), average=last)
            assert not trade.is_open

            assert cap.metric_value("botmon.pnl.realized") == pytest.approx(
                trade.close_profit_abs, abs=1e-9)
            result = ("win" if trade.close_profit_abs > 0
                      else "loss" if trade.close_profit_abs < 0 else "breakeven")
            assert cap.metric_value("botmon.positions.closed") == 1
            assert cap.metric_value("botmon.positions.closed", trading_result=result) == 1
    finally:
        Trade.session.remove()
        orders._BOOK.clear()
