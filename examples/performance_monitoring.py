"""Guide: Usage Examples / Performance Monitoring."""

from otel_botmon import SystemMonitor

system_monitor = SystemMonitor()

# Record trade execution
system_monitor.record_trade_execution(
    symbol="BTCUSDT",
    side="BUY",
    quantity=0.001,
    price=45000.0,
    execution_time=250.0  # milliseconds
)

# Record API call
system_monitor.record_api_call(
    endpoint="get_account_info",
    response_time=150.0,  # milliseconds
    status_code=200
)


sample = system_monitor.performance_monitor.sample()
# KPIs by name, each in its own unit over its own window (kpi_table() lists them)
print(f"trades: {sample.kpis['total_trades']}, "
      f"trade p50 (5m): {sample.kpis['trade_latency_p50']} s, "
      f"API calls (1m): {sample.kpis['api_requests']}")
