"""One exchange outage across bots is one chat message listing the bots (Alertmanager's
grouping by alertname and exchange, done by the in-process notifier), against local
servers speaking Slack's and Telegram's wire format."""

from __future__ import annotations

import random
import time

from otel_botmon.alerting.model import AlertSeverity, NotificationChannel
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.receivers import Receiver

BOTS = 50


def outage(bot: int, exchange: str) -> Notification:
    return Notification(
        alert_id=f"{exchange}-{bot}", title="Exchange down", message="no answer for 60 s",
        severity=AlertSeverity.CRITICAL, rule_name="exchange_down", value=1.0,
        labels={"alertname": "exchange_down", "exchange.name": exchange,
                "bot_name": f"bot-{bot:03d}"},
        channels=[NotificationChannel.SLACK, NotificationChannel.TELEGRAM],
    )


async def test_an_outage_across_bots_is_one_message_per_exchange_and_receiver(
    slack_receiver: Receiver, telegram_receiver: Receiver,
) -> None:
    config = NotificationConfig(
        console=False, rate_limits={}, group_wait=0.5, storm_threshold=1000,
        slack_webhook_url=f"{slack_receiver.url}/services/T/B/grp",
        telegram_bot_token="123:grp-token", telegram_chat_id="-100",
        telegram_api_url=telegram_receiver.url,
    )
    dispatcher = NotificationDispatcher(config, rng=random.Random(1))
    await dispatcher.start()
    try:
        started = time.monotonic()
        for bot in range(BOTS):  # the bots' alerts come in over a fraction of the window
            dispatcher.enqueue(outage(bot, "binance"))
        dispatcher.enqueue(outage(0, "kraken"))
        assert await dispatcher.drain(20)
        elapsed = time.monotonic() - started
        attempts = dispatcher.attempts()
    finally:
        await dispatcher.stop()
        dispatcher.close()
    assert elapsed >= 0.5  # the groups waited for their window
    slack = sorted(r.json()["text"] for r in slack_receiver.delivered())
    assert slack == ["[CRITICAL] FIRING: Exchange down",  # kraken's one alert: itself
                     "[CRITICAL] FIRING: exchange_down on binance: 50 alerts"]
    [binance] = [r.json() for r in slack_receiver.delivered() if "binance" in r.json()["text"]]
    listed = binance["blocks"][1]["text"]["text"]
    assert all(f"bot_name=bot-{bot:03d} (value 1)" in listed for bot in range(BOTS))
    telegram = [r.json()["text"] for r in telegram_receiver.delivered()]
    assert len(telegram) == 2
    [text] = [t for t in telegram if "binance" in t]
    assert all(f"bot_name=bot-{bot:03d}" in text for bot in range(BOTS))
    # none dropped: every alert's row was delivered, once per receiver
    delivered = [(a.alert_id, a.destination) for a in attempts if a.outcome == "delivered"]
    assert sorted(delivered) == sorted(
        [(f"binance-{b}", d) for b in range(BOTS) for d in ("slack", "telegram")]
        + [("kraken-0", "slack"), ("kraken-0", "telegram")])
