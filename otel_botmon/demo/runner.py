"""``run_demo()``: exchange + bot + monitor + dashboard in one process (``botmon demo``)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from otel_botmon import telemetry
from otel_botmon.alerting.model import Alert, AlertEvent, AlertEventKind
from otel_botmon.dashboard.server import MonitoringDashboard
from otel_botmon.demo.bot import DemoBot
from otel_botmon.demo.exchange import SimulatedExchange
from otel_botmon.demo.scenario import Scenario, demo_rules, heartbeat_max_age
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig
from otel_botmon.observe.checks import ExchangeApiCheck
from otel_botmon.redaction import register_secret


@dataclass
class DemoOptions:
    duration_s: float | None = None
    """Stop after this many seconds; ``None`` runs until interrupted."""
    port: int = 8001
    """Dashboard port (0: any free port)."""
    open_browser: bool = True
    time_scale: float = 1.0
    """Multiplies every fault phase, rule window and interval (tests use < 1)."""
    progress_interval_s: float = 5.0
    seed: int | None = None
    api_key: str | None = None
    """The bot's exchange credentials; random when not given."""
    api_secret: str | None = field(default=None, repr=False)


@dataclass
class DemoResult:
    url: str = ""
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    trades: int = 0
    dashboard_texts: list[str] = field(default_factory=list)
    """``/api/dashboard`` bodies sampled during the run (tests look for secrets)."""

    @property
    def fired_and_resolved(self) -> set[str]:
        return set(self.fired) & set(self.resolved)


def _config(scale: float) -> MonitoringConfig:
    return MonitoringConfig(
        health_check_interval=max(0.2, 2.0 * scale),
        metrics_collection_interval=max(0.2, 1.0 * scale),
        alert_check_interval=max(0.2, 1.0 * scale),
        status_update_interval=600.0,
        heartbeat_max_age=heartbeat_max_age(scale),
        # The demo prints its own alert lines; console notifications would interleave.
        notification_config=NotificationConfig(console=False),
        service_name="botmon-demo",
    )


async def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> DemoResult:
    """Run the demo until ``options.duration_s`` passes or the task is cancelled."""
    scale = options.time_scale
    if not scale > 0:
        raise ValueError(f"time_scale must be > 0, got {scale!r}")
    result = DemoResult()
    api_key = options.api_key or secrets.token_hex(16)
    api_secret = options.api_secret or secrets.token_hex(32)
    register_secret(api_key)
    register_secret(api_secret)
    telemetry.configure("botmon-demo", bot_name="demo", exchange="binance", strategy="demo")
    exchange = SimulatedExchange(api_key, api_secret, seed=options.seed)
    await exchange.start()
    monitor = SystemMonitor(_config(scale))
    for rule in demo_rules(scale):
        monitor.alert_manager.register_rule(rule)
    monitor.register_health_check(
        "exchange_api",
        ExchangeApiCheck(exchange.base_url, latency_warning_s=max(0.05, 0.5 * scale),
                         latency_critical_s=max(0.1, 2.5 * scale), request_timeout_s=5.0),
    )
    monitor.alert_manager.add_listener(_alert_printer(out, result), notifiable_only=False)
    bot = DemoBot(exchange.base_url, api_key, api_secret, monitor,
                  interval_s=max(0.05, 0.5 * scale), seed=options.seed)
    dashboard = MonitoringDashboard(monitor, port=options.port)
    tasks: list[asyncio.Task[Any]] = []
    started = False
    try:
        # The dashboard first: a busy port is the likeliest failure, and then nothing
        # else has run (no "demo stopped: 0 trades" before the real error).
        await dashboard.start()
        await monitor.start()
        started = True
        result.url = dashboard.url
        _say(out, f"otel_botmon demo: dashboard at {dashboard.url}")
        _say(out, f"simulated exchange at {exchange.base_url}; faults cycle every "
                  f"{60 * scale:.0f} s. Press Ctrl+C to stop.")
        if options.open_browser:
            with contextlib.suppress(Exception):
                webbrowser.open(dashboard.url)
        scenario = Scenario(exchange, bot, scale)
        tasks = [asyncio.create_task(bot.run(), name="demo-bot"),
                 asyncio.create_task(scenario.run(), name="demo-scenario")]
        await _report_progress(options, monitor, bot, scenario, result, out)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        result.trades = bot.stats.trades
        await dashboard.stop()
        await monitor.stop()
        monitor.close()
        await exchange.stop()
        if started:
            _say(out, f"demo stopped: {bot.stats.trades} trades, {len(result.fired)} alerts "
                      f"fired, {len(result.resolved)} resolved")
    return result


async def _report_progress(
    options: DemoOptions, monitor: SystemMonitor, bot: DemoBot, scenario: Scenario,
    result: DemoResult, out: TextIO,
) -> None:
    started = time.monotonic()
    next_line = started
    while options.duration_s is None or time.monotonic() - started < options.duration_s:
        now = time.monotonic()
        if now >= next_line:
            status = monitor.get_system_status()
            elapsed = now - started
            total = f"/{options.duration_s:.0f}" if options.duration_s else ""
            _say(out, f"[{elapsed:5.0f}{total} s] phase: {scenario.current:<22} "
                      f"trades {bot.stats.trades:>4}  P&L {bot.stats.pnl:+9.2f}  "
                      f"health {status.overall_health.value:<8} "
                      f"active alerts {status.active_alerts}")
            next_line = now + options.progress_interval_s
            result.dashboard_texts.append(repr(monitor.get_dashboard_data(alert_limit=20)))
        await asyncio.sleep(0.1)


def _alert_printer(out: TextIO, result: DemoResult) -> Callable[[Alert, AlertEvent], None]:
    def on_event(alert: Alert, event: AlertEvent) -> None:
        if event.kind is AlertEventKind.FIRED:
            result.fired.append(alert.rule_name)
            _say(out, f"  ALERT fired    [{alert.severity.value}] {alert.title}")
        elif event.kind is AlertEventKind.RESOLVED:
            result.resolved.append(alert.rule_name)
            _say(out, f"  ALERT resolved [{alert.severity.value}] {alert.title}")

    return on_event


def _say(out: TextIO, line: str) -> None:
    with contextlib.suppress(Exception):
        out.write(line + "\n")
        out.flush()
