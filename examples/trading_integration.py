"""Guide: Usage Examples / Integration with Trading Operations."""
# ruff: noqa: I001, RUF010, W293  (the guide's snippet, kept verbatim)

import asyncio

from otel_botmon import AlertSeverity, AlertType

import time
from otel_botmon import SystemMonitor

class MonitoredTradingBot:
    def __init__(self):
        self.system_monitor = SystemMonitor()
    
    async def execute_trade(self, symbol, side, quantity, price):
        """Execute trade with monitoring."""
        start_time = time.time()
        
        try:
            # Execute the trade
            result = await self.binance_client.create_order(
                symbol=symbol,
                side=side,
                type='MARKET',
                quantity=quantity
            )
            
            # Record successful execution
            execution_time = (time.time() - start_time) * 1000
            self.system_monitor.record_trade_execution(
                symbol, side, quantity, price, execution_time
            )
            
            return result
            
        except Exception as e:
            # Record failed execution and create alert
            execution_time = (time.time() - start_time) * 1000
            
            await self.system_monitor.create_custom_alert(
                title="Trade Execution Failed",
                message=f"Failed to execute {side} order for {symbol}: {str(e)}",
                severity=AlertSeverity.CRITICAL,
                alert_type=AlertType.TRADING
            )
            
            raise


class PaperBinanceClient:
    """Stands in for an exchange client: fills orders, rejects absurd quantities."""

    async def create_order(self, symbol, side, type, quantity):
        await asyncio.sleep(0.01)
        if quantity > 100:
            raise ValueError("Filter failure: LOT_SIZE")
        return {"symbol": symbol, "side": side, "type": type, "status": "FILLED"}


async def main():
    bot = MonitoredTradingBot()
    bot.binance_client = PaperBinanceClient()
    print(await bot.execute_trade("BTCUSDT", "BUY", 0.001, 45000.0))
    try:
        await bot.execute_trade("BTCUSDT", "SELL", 1000, 45000.0)
    except ValueError as exc:
        print("trade failed as expected:", exc)
    for alert in bot.system_monitor.get_active_alerts():
        print("alert:", alert["title"], "-", alert["message"])


asyncio.run(main())
