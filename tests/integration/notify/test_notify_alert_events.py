"""End to end with the real alert engine: the alert's own event history lists every
notification attempt, in the same SQLite file as the alerts."""

from __future__ import annotations

from pathlib import Path

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEventKind, AlertSeverity, NotificationChannel
from otel_botmon.alerting.store import AlertStore
from otel_botmon.notify import DeliveryResult, NotificationConfig, NotificationDispatcher
from otel_botmon.query import MetricHistory
from tests.integration.notify.receivers import Receiver, Reply


async def test_every_attempt_lands_in_the_alerts_event_history(
    tmp_path: Path, webhook_receiver: Receiver,
) -> None:
    db = tmp_path / "alerts.db"
    store = AlertStore(db)
    evaluator = AlertEvaluator([], MetricHistory(), store=store)

    def record(alert_id: str, channel: NotificationChannel, result: DeliveryResult) -> None:
        store.add_event(alert_id, AlertEventKind.NOTIFIED, result.as_event_detail(channel))

    dispatcher = NotificationDispatcher(
        NotificationConfig(console=False, webhook_urls=[f"{webhook_receiver.url}/hook"],
                           retry_initial_delay=0.05),
        outbox_path=db, on_attempt=record)
    evaluator.add_listener(dispatcher.on_alert_event)
    webhook_receiver.respond(Reply(503, {"Retry-After": "0"}, b"busy"))
    await dispatcher.start()
    try:
        alert, _ = evaluator.create_custom_alert("Heartbeat stalled", "no tick for 60 s",
                                                 AlertSeverity.CRITICAL)
        evaluator.acknowledge(alert.id, "alice")
        evaluator.resolve(alert.id, "bob")
        assert await dispatcher.drain(10)
    finally:
        await dispatcher.stop()
        dispatcher.close()
    bodies = [r.json() for r in webhook_receiver.delivered()]
    assert [(b["event"], b["actor"]) for b in bodies] == [
        ("fired", None), ("acknowledged", "alice"), ("resolved", "bob")]
    assert all(b["alert_id"] == alert.id and b["fingerprint"] == alert.fingerprint
               for b in bodies)
    notified = [e.detail for e in store.events(alert.id) if e.kind is AlertEventKind.NOTIFIED]
    assert [(d["channel"], d["outcome"], d["status_code"]) for d in notified] == [
        ("webhook", "retry", 503), ("webhook", "delivered", 200),
        ("webhook", "delivered", 200), ("webhook", "delivered", 200)]
    kinds = [e.kind for e in store.events(alert.id)]
    assert kinds[0] is AlertEventKind.FIRED and AlertEventKind.RESOLVED in kinds
    store.close()
