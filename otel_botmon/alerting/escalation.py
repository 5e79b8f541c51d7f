"""Escalation: a firing alert nobody acknowledged for ``escalation_minutes`` goes up one
severity step (until EMERGENCY) and gains the rule's ``escalation_channels``; it can
escalate again every ``escalation_minutes`` after that."""

from __future__ import annotations

from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertRule,
    AlertSeverity,
    AlertState,
)


def escalate_if_due(alert: Alert, policy: AlertRule, now: float) -> AlertEvent | None:
    """Escalate ``alert`` (in place) when due under ``policy``; returns the ESCALATED event
    (detail: from, to, level, channels, added_channels) or None."""
    if alert.state is not AlertState.FIRING or alert.acknowledged:
        return None
    minutes = policy.escalation_minutes
    if minutes is None or alert.severity is AlertSeverity.EMERGENCY:
        return None
    since = alert.escalated_at or alert.fired_at or alert.started_at
    if now - since < minutes * 60.0:
        return None
    before = alert.severity
    alert.severity = before.escalated()
    alert.escalation_level += 1
    alert.escalated_at = now
    added = [c for c in policy.escalation_channels if c not in alert.channels]
    alert.channels.extend(added)
    return AlertEvent(alert_id=alert.id, kind=AlertEventKind.ESCALATED, at=now, detail={
        "from": before.value, "to": alert.severity.value, "level": alert.escalation_level,
        "channels": [c.value for c in alert.channels], "added_channels": [c.value for c in added],
    })
