"""Notification: built from an alert, stored as JSON, summarised for storms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otel_botmon import redaction
from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertSeverity,
    AlertType,
    NotificationChannel,
)
from otel_botmon.notify.message import Notification, summarize
from tests.unit.notify.fakes import make_notification


def firing_alert() -> Alert:
    alert = Alert.new(
        rule_name="high_cpu", title="High CPU", message="cpu at 97%",
        severity=AlertSeverity.CRITICAL, alert_type=AlertType.SYSTEM,
        labels={"host": "bot-1"}, started_at=1_700_000_000.0,
        channels=[NotificationChannel.SLACK],
    )
    alert.fired_at = 1_700_000_060.0
    alert.value = 97.0
    return alert


def test_from_alert_carries_what_every_message_needs() -> None:
    alert = firing_alert()
    event = AlertEvent(alert.id, AlertEventKind.FIRED, at=1_700_000_061.0)
    n = Notification.from_alert(alert, event)
    assert (n.alert_id, n.fingerprint, n.title, n.message) == (
        alert.id, alert.fingerprint, "High CPU", "cpu at 97%")
    assert n.severity is AlertSeverity.CRITICAL and n.alert_type is AlertType.SYSTEM
    assert n.event is AlertEventKind.FIRED
    assert n.value == 97.0 and n.labels == {"host": "bot-1"}
    assert n.first_fired == datetime.fromtimestamp(1_700_000_060.0, UTC)
    assert n.channels == [NotificationChannel.SLACK]
    assert n.rule_name == "high_cpu"


def test_from_alert_takes_who_acknowledged_from_the_event() -> None:
    alert = firing_alert()
    event = AlertEvent(alert.id, AlertEventKind.ACKNOWLEDGED, at=1.0, detail={"by": "alice"})
    n = Notification.from_alert(alert, event)
    assert n.event is AlertEventKind.ACKNOWLEDGED and n.actor == "alice"
    assert ("By", "alice") in n.facts()


def test_from_alert_rejects_an_unknown_event() -> None:
    with pytest.raises(ValueError):
        Notification.from_alert(firing_alert(), "exploded")


def test_json_round_trip_keeps_every_field() -> None:
    n = make_notification(3, event=AlertEventKind.RESOLVED, actor="bob",
                          channels=[NotificationChannel.EMAIL], annotations={"runbook": "x"})
    assert Notification.from_dict(n.to_dict()) == n


def test_text_says_what_happened_and_the_facts() -> None:
    text = make_notification(1, severity=AlertSeverity.EMERGENCY).text()
    assert text.startswith("[EMERGENCY] FIRING: CPU high 1")
    for fact in ("Severity: emergency", "Type: custom", "Value: 93.5", "First fired: ",
                 "Labels: host=bot-1"):
        assert fact in text


def test_registered_secrets_are_scrubbed_from_alert_text() -> None:
    redaction.register_secret("sk-live-abcdef")
    n = make_notification(message="request failed: https://x/api?key=sk-live-abcdef")
    assert "sk-live-abcdef" not in n.message


def test_summary_lists_every_alert_with_the_highest_severity() -> None:
    items = [make_notification(i) for i in range(5)]
    items.append(make_notification(9, severity=AlertSeverity.CRITICAL))
    summary = summarize(items)
    assert summary.severity is AlertSeverity.CRITICAL
    assert summary.title.startswith("6 alert notifications")
    for i in (0, 1, 2, 3, 4, 9):
        assert f"alert-{i}" in summary.message
    assert [a["alert_id"] for a in summary.to_dict()["alerts"]] == [n.alert_id for n in items]


def test_labels_named_like_secrets_are_redacted_in_every_message() -> None:
    n = make_notification(labels={"api_key": "k-1234567890", "host": "bot-1"})
    assert n.labels == {"api_key": redaction.REDACTED, "host": "bot-1"}
    assert "k-1234567890" not in n.text() and "k-1234567890" not in repr(n.to_dict())


def test_annotations_named_like_secrets_are_redacted_as_labels_are() -> None:
    n = make_notification(annotations={"api_key": "k-1234567890", "summary": "high"})
    assert n.annotations == {"api_key": redaction.REDACTED, "summary": "high"}
    assert "k-1234567890" not in repr(n.to_dict())
    assert Notification.from_dict(n.to_dict()).annotations == n.annotations
