"""A complete trading bot wired into otel_botmon (the guide's "Integration Examples").

It trades on a paper exchange for a minute with everything on: the ``@trade``
decorator, closed-position P&L, the trading-engine heartbeat, a custom health check, a
custom metric, a custom alert rule, and the dashboard at http://localhost:8001.

    python examples/monitoring_integration_example.py
"""

import asyncio
import random

from otel_botmon import (
    AlertRule,
    AlertSeverity,
    AlertType,
    HealthStatus,
    Metric,
    MetricCategory,
    MetricType,
    MonitoringConfig,
    MonitoringDashboard,
    SystemMonitor,
    configure,
    record_position_closed,
    trade,
)

configure(service_name="paper-bot", bot_name="paper", exchange="paper", strategy="coin-flip")
system_monitor = SystemMonitor(MonitoringConfig(health_check_interval=10.0))
dashboard = MonitoringDashboard(system_monitor, port=8001)
prices = {"BTCUSDT": 45000.0}


@trade(order_type="MARKET")
async def place_order(symbol, side, quantity, price):
    await asyncio.sleep(random.uniform(0.01, 0.05))  # the exchange round trip
    prices[symbol] *= 1 + random.gauss(0.0005, 0.002)
    return prices[symbol]


async def check_exchange(component):
    return {"status": HealthStatus.HEALTHY, "message": "paper exchange is always up"}


async def trading_loop():
    while True:
        system_monitor.heartbeat()
        entry = await place_order("BTCUSDT", "BUY", 0.001, prices["BTCUSDT"])
        await asyncio.sleep(0.5)
        exit_price = await place_order("BTCUSDT", "SELL", 0.001, prices["BTCUSDT"])
        record_position_closed(symbol="BTCUSDT", pnl=(exit_price - entry) * 0.001)
        system_monitor.performance_monitor.metrics_collector.record_metric(
            "signal_strength", value=random.uniform(0, 100), tags={"strategy": "coin-flip"},
        )
        await asyncio.sleep(0.5)


async def main():
    system_monitor.register_health_check("paper_exchange", check_exchange)
    system_monitor.performance_monitor.metrics_collector.register_metric(Metric(
        name="signal_strength", metric_type=MetricType.GAUGE, category=MetricCategory.TRADING,
        description="How sure the strategy is", unit="percentage",
    ))
    system_monitor.alert_manager.register_rule(AlertRule(
        name="low_win_rate", condition="win_rate < 40 and total_trades > 20",
        severity=AlertSeverity.WARNING, alert_type=AlertType.TRADING,
        description="Win rate below 40% after 20 trades",
    ))
    await system_monitor.start()
    await dashboard.start()
    print(f"dashboard at {dashboard.url}")
    bot = asyncio.create_task(trading_loop())
    await asyncio.sleep(60)
    bot.cancel()
    status = system_monitor.get_system_status()
    print(f"health: {status.overall_health.value}, active alerts: {status.active_alerts}")
    await dashboard.stop()
    await system_monitor.stop()


asyncio.run(main())
