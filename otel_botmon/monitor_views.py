"""The monitor's views for the dashboard and the CLI: ``SystemStatus``, JSON views of
alerts, silences, health results and rules, and the "unknown id" errors.

Every free text (titles, messages, annotations, event details, comments) is scrubbed of
registered secrets here, on the way out, and so are health checks' metrics (whatever
the bot's check put in them: a URL, an error text, an ``api_key`` entry).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_botmon.alerting.model import matcher_text
from otel_botmon.observe.health import HealthStatus
from otel_botmon.redaction import REDACTED, is_sensitive_key, redact_labels, redact_text


class UnknownSilenceError(KeyError):
    """No silence has the given id."""

    def __init__(self, silence_id: str) -> None:
        super().__init__(silence_id)
        self.silence_id = silence_id

    def __str__(self) -> str:
        return f"no silence with id {self.silence_id!r}"


class UnknownAlertError(KeyError):
    """No alert has the given id."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(alert_id)
        self.alert_id = alert_id

    def __str__(self) -> str:
        return f"no alert with id {self.alert_id!r}"


@dataclass
class SystemStatus:
    """What ``get_system_status()`` returns: the whole bot at a glance."""

    overall_health: HealthStatus
    """Worst component health, raised to CRITICAL by a firing critical/emergency alert
    (DEGRADED by a firing warning)."""
    active_alerts: int
    """Firing alerts (as Prometheus counts them); pending ones are in ``pending_alerts``."""
    alerts_by_severity: dict[str, int]
    """Firing alerts by severity."""
    components: dict[str, str]
    """Component name -> its health status value."""
    uptime_seconds: float
    started_at: float | None
    running: bool
    timestamp: float = field(default_factory=time.time)
    pending_alerts: int = 0
    """Alerts whose condition holds but not yet for their rule's ``for``."""
    firing: list[dict[str, Any]] = field(default_factory=list)
    """The firing alerts, most severe then oldest first: id, title, severity, fired_at."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall_health": self.overall_health.value,
            "active_alerts": self.active_alerts,
            "pending_alerts": self.pending_alerts,
            "alerts_by_severity": dict(self.alerts_by_severity),
            "firing": [dict(a) for a in self.firing],
            "components": dict(self.components),
            "uptime_seconds": round(self.uptime_seconds, 3),
            "started_at": self.started_at,
            "running": self.running,
            "timestamp": self.timestamp,
        }


SUMMARY_FIELDS = (
    "id", "title", "message", "severity", "alert_type", "state", "acknowledged",
    "acknowledged_by", "acknowledged_at", "labels", "annotations", "rule_name", "value",
    "started_at", "fired_at", "resolved_at",
)
"""The fields of an alert in ``/api/dashboard`` (``GET /api/alerts/{id}`` has them all)."""

def alert_dict(alert: Any, *, with_events: bool = False) -> dict[str, Any]:
    """An alert's JSON view, with secrets scrubbed from its free text."""
    data: dict[str, Any] = alert.to_dict(with_events=with_events)
    for event in data.get("events", ()):
        event["detail"] = {k: redact_text(v) if isinstance(v, str) else v
                           for k, v in dict(event.get("detail") or {}).items()}
    data["title"] = redact_text(data.get("title", ""))
    data["message"] = redact_text(data.get("message", ""))
    data["annotations"] = {k: redact_text(v) for k, v in dict(data.get("annotations", {})).items()}
    return data


def summary(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view.get(key) for key in SUMMARY_FIELDS}


def silence_dict(silence: Any, now: float) -> dict[str, Any]:
    data: dict[str, Any] = silence.to_dict()
    # a matcher's value as an alert label's would be shown (by name and by value)
    shown = [(redact_text(m.name), m.op, next(iter(redact_labels({m.name: m.value}).values())))
             for m in silence.matchers]
    data["matchers"] = [{"name": name, "op": op, "value": value} for name, op, value in shown]
    data["matchers_text"] = [matcher_text(name, op, value) for name, op, value in shown]
    data["created_by"] = redact_text(data.get("created_by", ""))
    data["state"] = ("active" if silence.active_at(now)
                     else "pending" if now < silence.starts_at else "expired")
    data["comment"] = redact_text(data.get("comment", ""))
    return data


def health_dict(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.to_dict()
    data["message"] = redact_text(data.get("message", ""))
    data["metrics"] = _metric_values(data.get("metrics") or {}, 0)
    return data


_MAX_METRIC_DEPTH = 8


def _metric_values(metrics: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    """A health check's metrics as JSON-ready data: names as text, the value of a
    sensitive name (``api_key``) ``"REDACTED"``, every text scrubbed, non-finite numbers
    ``None``, and anything else (a datetime, an exception) as its scrubbed text."""
    out: dict[str, Any] = {}
    for raw_key, value in metrics.items():
        key = redact_text(raw_key)
        out[key] = REDACTED if is_sensitive_key(key) else _metric_value(value, depth + 1)
    return out


def _metric_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth < _MAX_METRIC_DEPTH:
        if isinstance(value, Mapping):
            return _metric_values(value, depth)
        if isinstance(value, (list, tuple)):
            return [_metric_value(item, depth + 1) for item in value]
    return redact_text(value)  # text, or what str() makes of it (never raises)


_SIMPLE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*(-?[\d.]+(?:e-?\d+)?)\s*(ms|s|%)?\s*$")


def rule_dict(rule: Any) -> dict[str, Any]:
    """A rule for the page: name, severity, condition and, for a simple ``metric > N``
    condition, its metric, comparison and threshold (drawn as a line on the chart)."""
    data: dict[str, Any] = {
        "name": rule.name, "severity": rule.severity.value, "condition": rule.condition,
        "for_s": rule.for_, "metric": None, "op": None, "threshold": None, "unit": None,
    }
    found = _SIMPLE.match(rule.condition)
    if found:
        data.update(metric=found.group(1), op=found.group(2),
                    threshold=float(found.group(3)), unit=found.group(4))
    return data
