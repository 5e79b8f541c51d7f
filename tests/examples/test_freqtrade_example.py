"""The example strategy (examples/freqtrade_strategies/botmon_sma_strategy.py) runs in
real Freqtrade and a user sees its telemetry.

``freqtrade trade --dry-run`` runs as a subprocess with the example strategy against the
simulated Binance exchange on 127.0.0.1 (its klines, order book and markets), exporting
OTLP/HTTP to a real receiver. One round trip is driven through Freqtrade's own REST API
(``forceenter``, then ``forceexit``) with a stake larger than the best ask's quantity, so
the dry-run market order walks the book and the fill slips. The strategy's own signals
cannot touch that trade: it watches another pair (its trades there, if its moving
averages cross, are left alone) and exit signals are off (``use_exit_signal``), so only
the forced exit closes the position. Everything is awaited
(Freqtrade's API, then the receiver); Freqtrade is stopped with SIGINT, killed only if it
does not exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_botmon.demo.serve import ExchangeThread, local_urls
from tests.otlp_receiver import OtlpReceiver, attributes
from tests.services import LOOPBACK, free_port, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STRATEGY_DIR = REPO / "examples" / "freqtrade_strategies"
API_KEY = "ft-example-api-key-7d1c2b"
API_SECRET = "ft-example-api-secret-95e0aa41"
REST_USER, REST_PASSWORD = "botmon", "ft-example-rest-password-31f7"
PAIR, SYMBOL = "BTC/USDT", "BTCUSDT"  # forced through the REST API
STRATEGY_PAIR = "ETH/USDT"  # the strategy's whitelist
TRADE_SPAN = f"trade {PAIR}"
START_TIMEOUT_S = 90.0  # importing Freqtrade takes 5-30 s on a loaded machine
STOP_TIMEOUT_S = 30.0
SIGNATURE = re.compile(rb"[0-9a-fA-F]{64}")  # an HMAC-SHA256 signature in hex


@dataclass
class Freqtrade:
    process: subprocess.Popen[bytes]
    log_path: Path
    api: httpx.Client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait(self, what: str, done: Callable[[], Any], timeout: float) -> Any:
        """Poll ``done()`` until it returns something truthy; fail with Freqtrade's log."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"freqtrade exited ({self.process.returncode}) while waiting for "
                            f"{what}:\n{self.log()}")
            try:
                found = done()
            except httpx.HTTPError:
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:g} s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGINT (Freqtrade's Ctrl+C), then a kill if it outlives ``STOP_TIMEOUT_S``."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
                pytest.fail(f"freqtrade ignored SIGINT for {STOP_TIMEOUT_S:g} s:\n{self.log()}")
        return process.returncode


def _config(exchange_url: str, rest_port: int, workdir: Path) -> dict[str, Any]:
    """The Freqtrade config of the README's Freqtrade section, on local servers."""
    import ccxt

    return {
        "bot_name": "ft-example",
        "max_open_trades": 2,  # ours, and one the strategy may open on its own pair
        "use_exit_signal": False,
        "stake_currency": "USDT",
        "stake_amount": 100,
        "dry_run": True,
        "dry_run_wallet": 1_000_000,
        "trading_mode": "spot",
        "exchange": {
            "name": "binance",
            "key": API_KEY,
            "secret": API_SECRET,
            "enable_ws": False,
            "ccxt_config": {
                "urls": {"api": local_urls(ccxt.binance().urls["api"], exchange_url)},
                "options": {"fetchMarkets": {"types": ["spot"]}},
            },
            "pair_whitelist": [STRATEGY_PAIR],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "order_types": {"entry": "market", "exit": "market", "stoploss": "market",
                        "stoploss_on_exchange": False},
        "force_entry_enable": True,
        "initial_state": "running",
        "internals": {"process_throttle_secs": 1},
        "api_server": {
            "enabled": True, "listen_ip_address": LOOPBACK, "listen_port": rest_port,
            "username": REST_USER, "password": REST_PASSWORD,
            "jwt_secret_key": "ft-example-jwt-secret-" + "0" * 20,
            "ws_token": "ft-example-ws-token-" + "0" * 12, "CORS_origins": [],
        },
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "db_url": f"sqlite:///{workdir / 'trades.sqlite'}",
        "user_data_dir": str(workdir),
    }


@pytest.fixture
def freqtrade_binary() -> str:
    # Under BOTMON_REQUIRE_SERVICES=1 a missing Freqtrade fails here instead of skipping.
    return require_binary("freqtrade", str(Path(sys.executable).with_name("freqtrade")))


@pytest.fixture
def exchange() -> Iterator[ExchangeThread]:
    with ExchangeThread(API_KEY, API_SECRET, seed=11) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def freqtrade(
    freqtrade_binary: str, exchange: ExchangeThread, receiver: OtlpReceiver, tmp_path: Path,
) -> Iterator[Freqtrade]:
    rest_port = free_port()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(_config(exchange.base_url, rest_port, tmp_path)))
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("OTEL_", "BOTMON_"))}
    env.update({
        # This checkout's otel_botmon, whatever the environment has installed (an
        # editable install of another worktree, or a release).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    })
    log_path = tmp_path / "freqtrade.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [freqtrade_binary, "trade", "--dry-run", "--config", str(config_path),
             "--strategy", "BotmonSmaStrategy", "--strategy-path", str(STRATEGY_DIR),
             "--userdir", str(tmp_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=tmp_path, start_new_session=True,
        )
    api = httpx.Client(base_url=f"http://{LOOPBACK}:{rest_port}/api/v1",
                       auth=(REST_USER, REST_PASSWORD), timeout=30.0)
    bot = Freqtrade(process, log_path, api)
    try:
        bot.wait("running bot behind Freqtrade's REST API",
                 lambda: api.get("/show_config").json().get("state") == "running",
                 START_TIMEOUT_S)
        yield bot
    finally:
        api.close()
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


# --- reading what the receiver got ---------------------------------------------------------


def _spans(receiver: OtlpReceiver, name: str) -> list[dict[str, Any]]:
    return [attributes(span.attributes) | {"_span": span}
            for _, _, span in receiver.spans() if span.name == name]


def _points(receiver: OtlpReceiver, name: str, **wanted: Any) -> list[Any]:
    return [p for p in receiver.data_points(name)
            if wanted.items() <= attributes(p.attributes).items()]


def _value(point: Any) -> float:
    return float(point.as_double if point.HasField("as_double") else point.as_int)


def _latest(receiver: OtlpReceiver, name: str, **wanted: Any) -> float | None:
    """The newest value of metric ``name`` summed over the series matching ``wanted``
    (cumulative export: each request holds every series' running total)."""
    newest: dict[tuple[Any, ...], Any] = {}
    for point in _points(receiver, name, **wanted):
        key = tuple(sorted(attributes(point.attributes).items()))
        if key not in newest or point.time_unix_nano >= newest[key].time_unix_nano:
            newest[key] = point
    return sum(_value(p) for p in newest.values()) if newest else None


def _rest(bot: Freqtrade, method: str, path: str, **body: Any) -> Any:
    response = bot.api.request(method, path, json=body or None)
    assert response.status_code == 200, f"{method} {path}: {response.text}\n{bot.log()}"
    return response.json()


def _book(exchange: ExchangeThread, side: str) -> list[tuple[float, float]]:
    """The exchange's best ``side`` levels, as Freqtrade's ccxt reads them."""
    book = httpx.get(f"{exchange.base_url}/api/v3/depth",
                     params={"symbol": SYMBOL, "limit": 5}).json()
    return [(float(price), float(quantity)) for price, quantity in book[side]]


# --- the test ------------------------------------------------------------------------------


def test_freqtrade_runs_the_example_strategy_and_a_user_sees_its_telemetry(
    freqtrade: Freqtrade, exchange: ExchangeThread, receiver: OtlpReceiver,
) -> None:
    bot = freqtrade
    # The heartbeat of Freqtrade's loop, as a gauge a rule can watch.
    bot.wait("trading_engine heartbeat", lambda: _latest(
        receiver, "botmon.health.status", **{"health.component": "trading_engine"}) == 0,
        15.0)

    asks = _book(exchange, "asks")
    ask = asks[0][0]
    # Four levels' worth: the dry-run market order walks the book, so the fill slips.
    stake = round(sum(price * quantity for price, quantity in asks[:4]), 2)
    entry = _rest(bot, "POST", "/forceenter", pair=PAIR, side="long", stakeamount=stake)
    trade_id = entry["trade_id"]
    bot.wait("entry span", lambda: _spans(receiver, TRADE_SPAN), 15.0)

    bid = _book(exchange, "bids")[0][0]
    _rest(bot, "POST", "/forceexit", tradeid=str(trade_id))
    closed = bot.wait("closed trade", lambda: (
        t := _rest(bot, "GET", f"/trade/{trade_id}"))["is_open"] is False and t, 15.0)
    bot.wait("exit span", lambda: len(_spans(receiver, TRADE_SPAN)) >= 2, 15.0)
    ours = {"trading.symbol": PAIR}
    bot.wait("closed position in the metrics", lambda: _latest(
        receiver, "botmon.positions.closed", **ours), 15.0)
    assert bot.stop() in (0, 130), bot.log()  # 130: Freqtrade's exit code after Ctrl+C

    assert closed["exit_reason"] == "force_exit"

    # One span per order, from confirm to fill: the entry and the exit.
    orders = {o["ft_order_side"]: o for o in closed["orders"]}
    spans = sorted(_spans(receiver, TRADE_SPAN), key=lambda s: s["_span"].start_time_unix_nano)
    assert [s["trading.side"] for s in spans] == ["BUY", "SELL"]
    for span, order, requested in ((spans[0], orders["buy"], ask),
                                   (spans[1], orders["sell"], bid)):
        assert span["trading.outcome"] == "filled"
        assert span["trading.order_type"] == "MARKET"
        assert span["trading.quantity"] == pytest.approx(order["amount"])
        assert span["trading.fill_quantity"] == pytest.approx(order["filled"])
        assert span["trading.price"] == pytest.approx(requested)  # the best price confirmed
        assert span["trading.fill_price"] == pytest.approx(order["safe_price"])
        sign = 1 if span["trading.side"] == "BUY" else -1
        slipped = sign * (order["safe_price"] - requested) / requested * 10_000
        assert span["trading.slippage_bp"] == pytest.approx(slipped)
        assert span["trading.slippage_bp"] > 0  # the book was walked
        assert span["_span"].end_time_unix_nano > span["_span"].start_time_unix_nano

    # The counters a dashboard shows.
    assert _latest(receiver, "botmon.trades", **ours) == 2
    assert _latest(receiver, "botmon.trades", **ours, **{"trading.outcome": "filled"}) == 2
    assert _latest(receiver, "botmon.trades", **ours, **{"trading.side": "SELL"}) == 1
    assert _latest(receiver, "botmon.pnl.realized", **ours) == pytest.approx(
        closed["profit_abs"])
    result = "win" if closed["profit_abs"] > 0 else "loss"
    assert _latest(receiver, "botmon.positions.closed", **ours,
                   **{"trading.result": result}) == 1

    # Freqtrade's own exchange requests (ccxt), with status codes and rate limits.
    for endpoint in ("/api/v3/klines", "/api/v3/depth"):
        count = _latest(receiver, "botmon.exchange.requests", **{
            "exchange.name": "binance", "exchange.endpoint": endpoint,
            "http.response.status_code": 200})
        assert count is not None and count >= 1, endpoint
        assert any(s["http.response.status_code"] == 200
                   for s in _spans(receiver, f"exchange {endpoint}"))
    used = _latest(receiver, "botmon.exchange.ratelimit.used",
                   **{"exchange.name": "binance", "ratelimit.interval": "1m"})
    assert used is not None and used > 0
    utilization = _latest(receiver, "botmon.exchange.ratelimit.utilization",
                          **{"exchange.name": "binance", "ratelimit.interval": "1m"})
    assert utilization is not None and 0 < utilization <= 1

    # Whose telemetry it is.
    (resource, _, _) = receiver.spans()[0]
    assert resource["service.name"] == "freqtrade"
    assert resource["bot.name"] == "ft-example"
    assert resource["bot.strategy"] == "BotmonSmaStrategy"

    # No key, secret, signature or REST password in anything exported.
    for secret in (API_KEY, API_SECRET, REST_PASSWORD):
        assert not receiver.contains_bytes(secret.encode()), secret
    assert receiver.raw_bodies and not receiver.matches(SIGNATURE)
