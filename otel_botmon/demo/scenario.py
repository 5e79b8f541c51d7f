"""The demo's fault schedule and the alert rules that catch each fault.

One cycle lasts 60 s at ``time_scale=1``: calm, a latency spike, calm, rate limiting then
5xx errors, a stalled heartbeat, a losing streak. Each fault is caught by one rule whose
window is short enough that its alert fires during the fault and resolves within about
half a minute after it. ``time_scale`` shrinks every duration (tests use 0.1-0.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from otel_botmon import conventions as conv
from otel_botmon.alerting.model import AlertRule, AlertSeverity, AlertType
from otel_botmon.demo.bot import DemoBot
from otel_botmon.demo.exchange import Faults, SimulatedExchange


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    apply: Callable[[Faults, DemoBot], None]


def _calm(faults: Faults, bot: DemoBot) -> None:
    faults.extra_latency_s = 0.0
    faults.rate_limited = False
    faults.server_error_rate = 0.0
    faults.market_drift = 0.001
    bot.stall_heartbeat = False


def _latency(scale: float) -> Callable[[Faults, DemoBot], None]:
    def apply(faults: Faults, bot: DemoBot) -> None:
        _calm(faults, bot)
        faults.extra_latency_s = 1.5 * scale

    return apply


def _rate_limited(faults: Faults, bot: DemoBot) -> None:
    _calm(faults, bot)
    faults.rate_limited = True


def _server_errors(faults: Faults, bot: DemoBot) -> None:
    _calm(faults, bot)
    faults.server_error_rate = 0.6


def _stall(faults: Faults, bot: DemoBot) -> None:
    _calm(faults, bot)
    bot.stall_heartbeat = True


def _losing(faults: Faults, bot: DemoBot) -> None:
    _calm(faults, bot)
    faults.market_drift = -0.002


def phases(scale: float = 1.0) -> list[Phase]:
    """The fault cycle with every duration multiplied by ``scale``."""
    return [
        Phase("calm", 8 * scale, _calm),
        Phase("latency spike", 8 * scale, _latency(scale)),
        Phase("calm", 6 * scale, _calm),
        Phase("rate limited (429)", 4 * scale, _rate_limited),
        Phase("exchange errors (5xx)", 6 * scale, _server_errors),
        Phase("calm", 4 * scale, _calm),
        Phase("stalled heartbeat", 10 * scale, _stall),
        Phase("losing streak", 14 * scale, _losing),
    ]


def heartbeat_max_age(scale: float = 1.0) -> float:
    return 6.0 * scale


def _window(seconds: float) -> str:
    return f"{max(2, round(seconds))}s"


def demo_rules(scale: float = 1.0) -> list[AlertRule]:
    """Rules that fire on the demo's faults and resolve soon after each ends."""
    w = _window(20 * scale)
    closed = conv.POSITIONS_CLOSED.name
    win = f'{closed}{{{conv.TRADING_RESULT}="{conv.PositionResult.WIN.value}"}}'
    return [
        AlertRule(
            name="demo_trades_slow",
            condition=f"p95({conv.TRADE_DURATION.name}[{w}]) by () > {1000 * scale:.0f}ms",
            severity=AlertSeverity.WARNING, alert_type=AlertType.PERFORMANCE,
            description=f"Trade p95 above {1000 * scale:.0f} ms over {w}",
            cooldown_minutes=0.0,
            annotations={"summary": "Trades are slow",
                         "description": "Trade p95 is {value:.2f} s"},
        ),
        AlertRule(
            name="demo_exchange_errors",
            condition=(
                f'sum(increase({conv.EXCHANGE_REQUESTS.name}{{{conv.ERROR_TYPE}!=""}}[{w}]))'
                " > 3"
            ),
            severity=AlertSeverity.WARNING, alert_type=AlertType.API,
            description=f"More than 3 failed exchange requests in {w}",
            cooldown_minutes=0.0,
            annotations={"summary": "Exchange errors",
                         "description": "{value:.0f} failed exchange requests"},
        ),
        AlertRule(
            name="demo_trading_engine_stalled",
            condition=(
                f'{conv.HEALTH_STATUS.name}{{{conv.HEALTH_COMPONENT}="trading_engine"}} >= 2'
            ),
            severity=AlertSeverity.CRITICAL, alert_type=AlertType.HEALTH,
            description="The trading loop stopped sending heartbeats",
            cooldown_minutes=0.0,
            annotations={"summary": "Trading engine stalled"},
        ),
        AlertRule(
            name="demo_losing_streak",
            condition=(
                f"(sum(increase({win}[{w}])) or 0) / sum(increase({closed}[{w}])) < 0.25"
                f" and sum(increase({closed}[{w}])) >= 3"
            ),
            severity=AlertSeverity.WARNING, alert_type=AlertType.TRADING,
            description=f"Fewer than 25% winning positions over {w}",
            cooldown_minutes=0.0,
            annotations={"summary": "Losing streak"},
        ),
    ]


class Scenario:
    """Cycles through :func:`phases`, applying each to the exchange and the bot."""

    def __init__(self, exchange: SimulatedExchange, bot: DemoBot, scale: float = 1.0) -> None:
        self.exchange = exchange
        self.bot = bot
        self.phases = phases(scale)
        self.current = self.phases[0].name

    async def run(self) -> None:
        try:
            while True:
                for phase in self.phases:
                    self.current = phase.name
                    phase.apply(self.exchange.faults, self.bot)
                    await asyncio.sleep(phase.seconds)
        finally:
            _calm(self.exchange.faults, self.bot)
