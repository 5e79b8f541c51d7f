"""``Notification``: what one alert event says, independent of any channel.

It is plain data (JSON round-trip through :meth:`Notification.to_dict` /
:meth:`Notification.from_dict`) so the outbox can store it and a restarted process can
still deliver it. :meth:`Notification.from_alert` adapts an alert instance of
``otel_botmon.alerting`` by reading its attributes, so this package depends only on the
alert model's enums.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from otel_botmon.alerting.model import (
    AlertEventKind,
    AlertSeverity,
    AlertType,
    NotificationChannel,
)
from otel_botmon.redaction import redact_labels, redact_text

__all__ = [
    "NOTIFIABLE_EVENTS",
    "GroupKey",
    "Notification",
    "cut_escaped",
    "fit_lines",
    "fit_message",
    "group_key",
    "more_alerts_line",
    "summarize",
]

NOTIFIABLE_EVENTS = frozenset(
    {
        AlertEventKind.FIRED,
        AlertEventKind.ESCALATED,
        AlertEventKind.ACKNOWLEDGED,
        AlertEventKind.RESOLVED,
    }
)

_EVENT_VERB = {
    AlertEventKind.PENDING: "pending",
    AlertEventKind.INACTIVE: "inactive",
    AlertEventKind.FIRED: "FIRING",
    AlertEventKind.ESCALATED: "ESCALATED",
    AlertEventKind.ACKNOWLEDGED: "acknowledged",
    AlertEventKind.RESOLVED: "RESOLVED",
    AlertEventKind.NOTIFIED: "notified",
}


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(
            UTC
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str) and value:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Notification:
    """One thing to tell people about one alert.

    ``fingerprint`` identifies the alert series across events (PagerDuty's dedup_key,
    Alertmanager's label set); ``id`` identifies this notification (receivers use it as
    an idempotency key, so a redelivery after a crash can be recognised).
    """

    alert_id: str
    title: str
    message: str = ""
    severity: AlertSeverity = AlertSeverity.WARNING
    alert_type: AlertType = AlertType.CUSTOM
    event: AlertEventKind = AlertEventKind.FIRED
    fingerprint: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    first_fired: datetime = field(default_factory=lambda: datetime.now(UTC))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    channels: list[NotificationChannel] = field(default_factory=list)
    """Channels the rule asked for; empty means routing by severity."""
    rule_name: str | None = None
    actor: str | None = None
    """Who acknowledged or resolved, when a person did."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    summary_of: list[Notification] = field(default_factory=list, repr=False)
    """For an alert-storm summary: the notifications it stands for."""

    def __post_init__(self) -> None:
        self.alert_id = str(self.alert_id)
        self.fingerprint = self.fingerprint or self.alert_id
        self.severity = AlertSeverity(self.severity)
        self.alert_type = AlertType(self.alert_type)
        self.event = AlertEventKind(self.event)
        self.channels = [NotificationChannel(c) for c in self.channels]
        self.first_fired = _utc(self.first_fired)
        self.occurred_at = _utc(self.occurred_at)
        # Alert text can carry exception messages from anywhere (URLs with signatures).
        self.title = redact_text(str(self.title))
        if self.summary_of:  # line by line: the length cap must not cut the alert list
            self.message = "\n".join(map(redact_text, str(self.message).split("\n")))
        else:
            self.message = redact_text(str(self.message))
        self.labels = redact_labels(self.labels)  # by name (api_key) and by value
        self.annotations = redact_labels(self.annotations)  # by name and by value
        if self.actor is not None:  # a person's name as typed: valid text, no secret
            self.actor = redact_text(str(self.actor))
        if self.value is not None:
            self.value = float(self.value)

    # ----- presentation shared by the channels -----

    @property
    def verb(self) -> str:
        """``FIRING``, ``ESCALATED``, ``acknowledged`` or ``RESOLVED``."""
        return _EVENT_VERB[self.event]

    @property
    def subject(self) -> str:
        """One line: ``[CRITICAL] FIRING: title``."""
        return f"[{self.severity.value.upper()}] {self.verb}: {self.title}"

    def value_text(self) -> str:
        """The value as people read it (``-`` when there is none)."""
        if self.value is None:
            return "-"
        return f"{self.value:.6g}"

    def facts(self) -> list[tuple[str, str]]:
        """Labelled facts every channel shows, in order."""
        facts = [
            ("Event", self.event.value),
            ("Severity", self.severity.value),
            ("Type", self.alert_type.value),
            ("Value", self.value_text()),
            ("First fired", _iso(self.first_fired)),
            ("At", _iso(self.occurred_at)),
            ("Alert", self.alert_id),
        ]
        if self.rule_name:
            facts.append(("Rule", self.rule_name))
        if self.actor:
            facts.append(("By", self.actor))
        if self.labels:
            facts.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))))
        return facts

    def text(self) -> str:
        """Plain-text body: subject, message, then one ``name: value`` line per fact."""
        lines = [self.subject]
        if self.message:
            lines.append(self.message)
        lines.extend(f"{name}: {value}" for name, value in self.facts())
        return "\n".join(lines)

    # ----- storage -----

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601 UTC); the webhook body uses it as is."""
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "message": self.message,
            "severity": self.severity.value,
            "alert_type": self.alert_type.value,
            "event": self.event.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "first_fired": _iso(self.first_fired),
            "occurred_at": _iso(self.occurred_at),
            "channels": [c.value for c in self.channels],
            "rule_name": self.rule_name,
            "actor": self.actor,
            **({"alerts": [m.to_dict() for m in self.summary_of]} if self.summary_of else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """Inverse of :meth:`to_dict`. Raises KeyError/ValueError on a malformed dict."""
        return cls(
            id=str(data["id"]),
            alert_id=str(data["alert_id"]),
            fingerprint=str(data.get("fingerprint") or ""),
            title=str(data["title"]),
            message=str(data.get("message") or ""),
            severity=AlertSeverity(data["severity"]),
            alert_type=AlertType(data.get("alert_type", "custom")),
            event=AlertEventKind(data["event"]),
            labels=dict(data.get("labels") or {}),
            annotations=dict(data.get("annotations") or {}),
            value=data.get("value"),
            first_fired=_utc(data.get("first_fired")),
            occurred_at=_utc(data.get("occurred_at")),
            channels=[NotificationChannel(c) for c in data.get("channels") or []],
            rule_name=data.get("rule_name"),
            actor=data.get("actor"),
        )

    @classmethod
    def from_alert(cls, alert: object, event: object) -> Notification:
        """Build the notification for ``event`` (an ``AlertEventKind``, its value, or an
        event object with a ``kind``) on ``alert`` (an alert instance of the alerting
        package, read by attribute name; missing attributes get defaults).

        Raises:
            ValueError: ``event`` is not an alert event kind.
        """
        kind_source = getattr(event, "kind", event)
        kind = AlertEventKind(getattr(kind_source, "value", kind_source))
        rule = getattr(alert, "rule", None)

        def attr(*names: str, default: Any = None) -> Any:
            for owner in (alert, rule):
                for name in names:
                    value = getattr(owner, name, None) if owner is not None else None
                    if value is not None and value != "":
                        return value
            return default

        alert_id = attr("id", "alert_id", "fingerprint", default="")
        rule_name = attr("rule_name") or (getattr(rule, "name", None) if rule else None)
        channels: Sequence[Any] = attr("channels", default=[]) or []
        # The event's key names the notification: written twice, it is queued once.
        key = getattr(event, "key", None)
        notification = cls(
            alert_id=str(alert_id),
            fingerprint=str(attr("fingerprint", default=alert_id)),
            title=str(attr("title", "name", default=rule_name or alert_id)),
            message=str(attr("message", "description", default="")),
            severity=AlertSeverity(getattr(attr("severity"), "value", attr("severity"))
                                   or "warning"),
            alert_type=AlertType(getattr(attr("alert_type"), "value", attr("alert_type"))
                                 or "custom"),
            event=kind,
            labels=dict(attr("labels", default={}) or {}),
            annotations=dict(attr("annotations", default={}) or {}),
            value=_float_or_none(attr("value")),
            first_fired=_utc(attr("fired_at", "first_fired", "started_at", "active_at",
                                  "created_at", "timestamp")),
            occurred_at=_utc(getattr(event, "at", None) or getattr(event, "timestamp", None)),
            channels=[NotificationChannel(getattr(c, "value", c)) for c in channels],
            rule_name=rule_name,
            actor=_actor(alert, event, kind),
        )
        if isinstance(key, str) and key:
            notification.id = key
        return notification


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _actor(alert: object, event: object, kind: AlertEventKind) -> str | None:
    actor = getattr(event, "actor", None) or getattr(event, "by", None)
    detail = getattr(event, "detail", None)
    if actor is None and isinstance(detail, Mapping):
        actor = detail.get("by") or detail.get("actor") or detail.get("user")
    if actor is None and kind is AlertEventKind.ACKNOWLEDGED:
        actor = getattr(alert, "acknowledged_by", None)
    if actor is None and kind is AlertEventKind.RESOLVED:
        actor = getattr(alert, "resolved_by", None)
    return str(actor) if actor else None


GroupKey = tuple[AlertEventKind, str, str]
"""(event, alertname, exchange): notifications sent as one message share it."""

# where an alert's exchange is: the convention's attribute, its Prometheus spelling, or
# a plain label of the user's own
_EXCHANGE_LABELS = ("exchange.name", "exchange_name", "exchange")


def group_key(notification: Notification) -> GroupKey | None:
    """The group ``notification`` is sent with: its event, alertname (the rule's name
    unless its labels name it) and exchange (empty when it has none), as Alertmanager
    groups by ``[alertname, exchange]``. None for one that stands alone (no rule, as a
    custom alert; or a summary)."""
    alertname = notification.labels.get("alertname") or notification.rule_name
    if not alertname or notification.summary_of:
        return None
    exchange = next((notification.labels[k] for k in _EXCHANGE_LABELS
                     if notification.labels.get(k)), "")
    return notification.event, alertname, exchange


def summarize(notifications: Sequence[Notification], *,
              group: GroupKey | None = None) -> Notification:
    """One notification standing for many: the highest severity, a title with the count,
    and one line per alert in the message. Without ``group``, an alert storm; with it,
    the alerts of one group (see :func:`group_key`), each line naming the alert's labels
    (which bot, which series). The alert lines are the message's last
    ``len(summary_of)`` lines, so a channel can cut the list between two alerts and
    count the rest (:func:`fit_message`).

    Raises:
        ValueError: ``notifications`` is empty.
    """
    if not notifications:
        raise ValueError("summarize: no notifications")
    top = max(notifications, key=lambda n: n.severity.rank)
    labels = {"summary_count": str(len(notifications))}
    if group is None:
        title = f"{len(notifications)} alert notifications (alert storm summary)"
        lines = [_one_line(f"{n.subject} ({_label_text(n.labels) + '; ' if n.labels else ''}"
                           f"value {n.value_text()}; {n.alert_id})") for n in notifications]
        event = AlertEventKind.FIRED
    else:
        event, alertname, exchange = group
        where = f" on {exchange}" if exchange else ""
        title = f"{alertname}{where}: {len(notifications)} alerts"
        # the labels all alerts share once, then per alert what tells it apart (its bot,
        # its series): short lines, so a chat message lists many
        shared = dict(set.intersection(*(set(n.labels.items()) for n in notifications)))
        lines = [_one_line(f"Labels: {_label_text(shared)}")] if _label_text(shared) else []
        lines += [
            _one_line(f"- {_label_text(n.labels, shared) or n.alert_id} (value {n.value_text()})")
            for n in notifications
        ]
        labels.update(alertname=alertname, **({"exchange.name": exchange} if exchange else {}))
    # the id is the members' ids digested: a summary redelivered after a crash carries the
    # same id (the webhook's Idempotency-Key, the mail's Message-ID)
    digest = hashlib.sha256("\n".join(n.id for n in notifications).encode()).hexdigest()
    return Notification(
        id=f"summary-{digest[:32]}",
        alert_id="summary",
        fingerprint=f"summary-{notifications[0].id}",
        title=title,
        message="\n".join(lines),
        severity=top.severity,
        alert_type=top.alert_type if all(n.alert_type == top.alert_type for n in notifications)
        else AlertType.CUSTOM,
        event=event,
        labels=labels,
        first_fired=min(n.first_fired for n in notifications),
        summary_of=list(notifications),
    )


def _label_text(labels: Mapping[str, str], leave_out: Mapping[str, str] | None = None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                     if k != "alertname" and (leave_out is None or k not in leave_out))


def _one_line(text: str) -> str:
    # a label value or title with a line break would make one alert two lines
    return text.replace("\r", " ").replace("\n", " ")


_ELLIPSIS = "…"


def more_alerts_line(count: int) -> str:
    """The last line of a cut alert list: how many alerts it leaves out."""
    return f"{_ELLIPSIS} and {count} more alert{'' if count == 1 else 's'}"


def cut_escaped(text: str, limit: int) -> str:
    """``text`` (HTML- or mrkdwn-escaped) cut to at most ``limit`` characters, ending
    with an ellipsis, without leaving half an entity such as ``&am`` behind."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(_ELLIPSIS))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # half of "&amp;" left behind: Telegram rejects the message
    return cut + _ELLIPSIS if limit >= len(_ELLIPSIS) else ""


def fit_lines(lines: Sequence[str], limit: int, *, alerts: int = 0,
              cut: Callable[[str, int], str] = cut_escaped) -> list[str]:
    """The leading ``lines`` that fit in ``limit`` characters once joined by newlines.

    The last ``alerts`` lines are one alert each (a summary's list): the cut falls
    between two of them and a last line (:func:`more_alerts_line`) counts the alerts
    left out, so every alert is named or counted. Any other line that does not fit is
    cut with ``cut`` and ends the list. ``limit`` should leave room for the count line
    (about 30 characters); below that the result is only guaranteed to fit.
    """
    if sum(map(len, lines)) + len(lines) - 1 <= limit:
        return list(lines)
    alerts = min(alerts, len(lines))
    first_alert = len(lines) - alerts
    kept: list[str] = []
    used = -1  # no newline before the first line
    for index, line in enumerate(lines):
        left_after = alerts - max(0, index + 1 - first_alert)
        reserve = len(more_alerts_line(left_after)) + 1 if left_after else 0
        room = limit - used - 1 - reserve
        if len(line) <= room:
            kept.append(line)
            used += len(line) + 1
            continue
        if index < first_alert and room > len(_ELLIPSIS):
            kept.append(cut(line, room))
            used += len(kept[-1]) + 1
        left = alerts - max(0, index - first_alert)
        if left and used + 1 + len(more_alerts_line(left)) <= limit:
            kept.append(more_alerts_line(left))
        break
    return kept


def fit_message(notification: Notification, limit: int, *, line_limit: int | None = None,
                escape: Callable[[str], str] = lambda text: text) -> str:
    """``notification.message`` with each line escaped for a channel and cut to
    ``line_limit``, then cut at a line boundary to at most ``limit`` characters; a
    summary's alert list ends with how many alerts did not fit (see :func:`fit_lines`)."""
    if not notification.message:
        return ""
    lines = [escape(line) for line in notification.message.split("\n")]
    if line_limit is not None:
        lines = [cut_escaped(line, line_limit) for line in lines]
    return "\n".join(fit_lines(lines, limit, alerts=len(notification.summary_of)))
