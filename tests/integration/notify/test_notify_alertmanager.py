"""Alertmanager 0.25 receives, keeps and resolves our alerts; firing ones are re-sent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from otel_botmon.alerting.model import AlertEventKind, AlertSeverity, NotificationChannel
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.conftest import AlertmanagerServer
from tests.integration.notify.receivers import Receiver, wait_until_async

AM = [NotificationChannel.ALERTMANAGER]


def alert(event: AlertEventKind, **kwargs: Any) -> Notification:
    return Notification(
        alert_id="a1", fingerprint="fp-a1", title="Win rate low", message="win rate 41%",
        severity=AlertSeverity.WARNING, event=event, value=41.0, rule_name="low_win_rate",
        labels={"alertname": "low_win_rate", "trading.symbol": "BTCUSDT"}, channels=AM,
        first_fired=datetime.now(UTC) - timedelta(seconds=5), **kwargs)


def am_alerts(url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return [a for a in response.json() if a["labels"].get("alertname") == "low_win_rate"]


async def test_alert_shows_in_alertmanager_then_resolves(alertmanager: AlertmanagerServer) -> None:
    config = NotificationConfig(console=False, alertmanager_url=alertmanager.url,
                                generator_url="http://127.0.0.1:8001/",
                                retry_initial_delay=0.1)
    dispatcher = NotificationDispatcher(config, rng=random.Random(2))
    await dispatcher.start()
    try:
        dispatcher.enqueue(alert(AlertEventKind.FIRED))
        assert await dispatcher.drain(10)
        [shown] = am_alerts(alertmanager.url)
        assert shown["status"]["state"] == "active"
        assert shown["labels"]["trading_symbol"] == "BTCUSDT"
        assert shown["labels"]["severity"] == "warning"
        assert shown["annotations"]["summary"] == "Win rate low"
        assert shown["annotations"]["value"] == "41"
        assert shown["generatorURL"] == "http://127.0.0.1:8001/"
        # Alertmanager told its own receiver that the alert fires
        await wait_until_async(lambda: any(
            r.json()["status"] == "firing" for r in alertmanager.hook.requests), 10)

        dispatcher.enqueue(alert(AlertEventKind.RESOLVED))
        assert await dispatcher.drain(10)
        await wait_until_async(lambda: am_alerts(alertmanager.url) == [], 10,
                               what="alert to leave the active list")
        await wait_until_async(lambda: any(
            r.json()["status"] == "resolved" for r in alertmanager.hook.requests), 10,
            what="alertmanager to send a resolved notification")
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_an_alert_that_fired_after_now_is_accepted_and_stays_active(
    alertmanager: AlertmanagerServer,
) -> None:
    # the wall clock was stepped back 10 minutes since the alert fired: its start is
    # "later" than now + 4 resend intervals, which Alertmanager refuses for the whole
    # request ("start time must be before end time")
    config = NotificationConfig(console=False, alertmanager_url=alertmanager.url,
                                alertmanager_resend_interval=1.0, retry_initial_delay=0.1)
    dispatcher = NotificationDispatcher(config, rng=random.Random(2))
    await dispatcher.start()
    try:
        ahead = datetime.now(UTC) + timedelta(minutes=10)
        dispatcher.enqueue(Notification(
            alert_id="a1", fingerprint="fp-a1", title="Win rate low", value=41.0,
            severity=AlertSeverity.WARNING, event=AlertEventKind.FIRED,
            rule_name="low_win_rate", labels={"alertname": "low_win_rate"}, channels=AM,
            first_fired=ahead))
        assert await dispatcher.drain(10)
        assert [r.outcome for r in dispatcher.attempts("a1")] == ["delivered"]
        [shown] = am_alerts(alertmanager.url)
        assert shown["status"]["state"] == "active"
    finally:
        await dispatcher.stop()
        dispatcher.close()


async def test_firing_alerts_are_resent_until_resolved(webhook_receiver: Receiver) -> None:
    config = NotificationConfig(console=False, alertmanager_url=webhook_receiver.url,
                                alertmanager_resend_interval=0.2)
    dispatcher = NotificationDispatcher(config)
    await dispatcher.start()
    try:
        dispatcher.enqueue(alert(AlertEventKind.FIRED))
        await webhook_receiver.until(3)  # the first send and two re-sends
        bodies = [r.json() for r in webhook_receiver.requests]
        assert all(r.path == "/api/v2/alerts" for r in webhook_receiver.requests)
        assert all(b[0]["labels"]["alertname"] == "low_win_rate" for b in bodies)
        ends = [datetime.fromisoformat(b[0]["endsAt"].replace("Z", "+00:00")) for b in bodies]
        assert ends == sorted(ends) and ends[-1] > datetime.now(UTC)

        dispatcher.enqueue(alert(AlertEventKind.RESOLVED))
        assert await dispatcher.drain(5)
        resolved = webhook_receiver.requests[-1].json()[0]
        assert datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00")) <= (
            datetime.now(UTC))
        # the re-sender's list is empty: nothing keeps the resolved alert alive
        assert dispatcher.outbox.active("alertmanager") == []
    finally:
        await dispatcher.stop()
        dispatcher.close()
