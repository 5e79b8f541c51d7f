"""The alert model: severities, types, channels and rules (the seed guide's names).

Alert *instances* and their lifecycle states live here too; the evaluator drives them.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeAlias

from otel_botmon._unicode import valid_text
from otel_botmon.alerting.templates import render_template as render_template
from otel_botmon.query import Matcher
from otel_botmon.redaction import redact_labels, redact_text


class AlertSeverity(str, Enum):
    """How urgent an alert is. Ordered: INFO < WARNING < CRITICAL < EMERGENCY."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def escalated(self) -> AlertSeverity:
        """The next severity up (EMERGENCY stays EMERGENCY)."""
        return _SEVERITY_ORDER[min(self.rank + 1, len(_SEVERITY_ORDER) - 1)]


_SEVERITY_ORDER = (
    AlertSeverity.INFO, AlertSeverity.WARNING, AlertSeverity.CRITICAL, AlertSeverity.EMERGENCY,
)


class AlertType(str, Enum):
    """What part of the bot an alert is about."""

    SYSTEM = "system"
    PERFORMANCE = "performance"
    TRADING = "trading"
    API = "api"
    DATABASE = "database"
    HEALTH = "health"
    SECURITY = "security"
    CUSTOM = "custom"


class NotificationChannel(str, Enum):
    """Where a notification can go."""

    CONSOLE = "console"
    FILE = "file"
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"
    TELEGRAM = "telegram"
    ALERTMANAGER = "alertmanager"
    PAGERDUTY = "pagerduty"


class AlertState(str, Enum):
    """Lifecycle of one alert instance, as in Prometheus plus acknowledgement."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertEventKind(str, Enum):
    """What happened to an alert instance; every kind is stored and can be notified."""

    PENDING = "pending"
    INACTIVE = "inactive"
    """A pending alert whose condition cleared before its ``for``: it never fired."""
    FIRED = "fired"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    NOTIFIED = "notified"


@dataclass
class AlertRule:
    """A named condition over the SDK's metrics that raises alerts.

    ``condition`` is an expression of the condition language (``otel_botmon.query``), e.g.
    ``"win_rate < 50"`` or ``"p95(botmon.trade.duration[5m]) > 2s"``. It is compiled when
    the rule is registered; a syntax or name error raises ``RuleSyntaxError`` then.
    """

    name: str
    condition: str
    severity: AlertSeverity = AlertSeverity.WARNING
    alert_type: AlertType = AlertType.CUSTOM
    description: str = ""
    cooldown_minutes: float = 5.0
    """After an alert of this rule resolves, a new one for the same series is not
    notified again before this many minutes."""
    escalation_minutes: float | None = None
    """Unacknowledged for this long while firing: severity goes up one step and the
    escalation channels are added. ``None`` disables escalation."""
    channels: list[NotificationChannel] = field(default_factory=list)
    """Channels to notify; empty means the dispatcher's routing by severity."""
    for_: float = 0.0
    """Seconds the condition must hold before the alert fires (pending until then)."""
    keep_firing_for: float = 0.0
    """Seconds the alert keeps firing after the condition stopped holding."""
    recovery_threshold: float | None = None
    """Hysteresis: a firing alert resolves only once the compared value crosses this
    threshold (e.g. fire above 90, resolve below 80)."""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    """Templated with ``{value}``, ``{labels[name]}``/``{$labels.name}`` and ``{rule}``."""
    escalation_channels: list[NotificationChannel] = field(default_factory=list)
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("AlertRule.name must be a non-empty string")
        if valid_text(self.name) != self.name:  # it is stored and sent as it is
            raise ValueError(f"AlertRule {self.name!r}: name is not valid Unicode text "
                             "(a lone surrogate, e.g. from bytes decoded with surrogateescape)")
        if not isinstance(self.condition, str) or not self.condition.strip():
            raise ValueError(f"AlertRule {self.name!r}: condition must be a non-empty string")
        self.severity = AlertSeverity(self.severity)
        self.alert_type = AlertType(self.alert_type)
        self.channels = [NotificationChannel(c) for c in self.channels]
        self.escalation_channels = [NotificationChannel(c) for c in self.escalation_channels]
        for attr in ("cooldown_minutes", "for_", "keep_firing_for"):
            value = getattr(self, attr)
            if not _finite_non_negative(value):
                raise ValueError(
                    f"AlertRule {self.name!r}: {attr} must be a finite number >= 0, got {value!r}"
                )
        if self.escalation_minutes is not None and not (
            _finite_non_negative(self.escalation_minutes) and self.escalation_minutes > 0
        ):
            raise ValueError(
                f"AlertRule {self.name!r}: escalation_minutes must be > 0 or None, "
                f"got {self.escalation_minutes!r}"
            )


def _finite_non_negative(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


# --- alert instances ---------------------------------------------------------------------

ALERTNAME_LABEL = "alertname"
SEVERITY_LABEL = "severity"
CUSTOM_RULE_NAME = "custom"
"""``Alert.rule_name`` of alerts created in code with ``create_custom_alert``."""


def fingerprint(rule_name: str, labels: Mapping[str, str]) -> str:
    """A stable id of one alert series: the rule name plus its sorted labels.

    Two evaluations that produce the same rule and labels are the same alert (dedup);
    the result is a 16-hex-digit string, stable across processes and restarts. Text that
    is not valid Unicode (a lone surrogate) counts as stored: read as U+FFFD (see
    :mod:`otel_botmon._unicode`), so an alert keeps its fingerprint after a reload.
    """
    digest = hashlib.sha256(valid_text(rule_name).encode("utf-8"))
    for key in sorted(labels):
        value = valid_text(str(labels[key]))
        digest.update(b"\x00" + valid_text(key).encode("utf-8") + b"\x01" + value.encode("utf-8"))
    return digest.hexdigest()[:16]


def new_alert_id() -> str:
    """A random 32-hex-digit id (uuid4's randomness without its cost)."""
    return os.urandom(16).hex()


@dataclass
class AlertEvent:
    """Something that happened to one alert instance (stored, and passed to listeners).

    ``notify`` says whether this event should reach notification channels; when it is
    false, ``suppressed`` says why (``"silenced:<id>"``, ``"inhibited"``, ``"cooldown"``,
    ``"rate_limited"``, ``"not_notified"``).
    """

    alert_id: str
    kind: AlertEventKind
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    notify: bool = True
    suppressed: str | None = None
    id: int | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False, repr=False)
    """This event's identity before (and apart from) its store row: the id of the
    notification it causes, so a notification written twice (by the alert store's
    transaction and by the listener after a failed write) is queued once."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "alert_id": self.alert_id, "kind": self.kind.value,
            "at": self.at, "at_iso": iso_utc(self.at), "detail": dict(self.detail),
            "notify": self.notify, "suppressed": self.suppressed,
        }


@dataclass
class Alert:
    """One alert instance: a rule's condition holding for one series (or a custom alert).

    Times are epoch seconds (UTC). ``started_at`` is when the condition was first seen
    (Prometheus' ``activeAt``); ``fired_at`` when the alert went from pending to firing.
    """

    id: str
    fingerprint: str
    rule_name: str
    title: str
    message: str
    severity: AlertSeverity
    alert_type: AlertType
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    state: AlertState = AlertState.PENDING
    started_at: float = 0.0
    fired_at: float | None = None
    last_eval: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    escalation_level: int = 0
    escalated_at: float | None = None
    keep_firing_since: float | None = None
    channels: list[NotificationChannel] = field(default_factory=list)
    notified: bool = False
    """Whether the FIRED event reached the channels (a suppressed alert is notified once
    the suppression ends while it still fires)."""
    suppressed: str | None = None
    events: list[AlertEvent] = field(default_factory=list)

    @classmethod
    def new(
        cls, *, rule_name: str, title: str, message: str, severity: AlertSeverity,
        alert_type: AlertType, labels: Mapping[str, str], started_at: float,
        channels: Iterable[NotificationChannel] = (),
    ) -> Alert:
        """A fresh pending instance with a random id and the fingerprint of its labels.

        Title, message and labels are redacted here, before anything stores, logs or
        shows them: a label named like a secret (``api_key``) keeps its name only.
        """
        return cls(
            id=new_alert_id(), fingerprint=fingerprint(rule_name, labels),
            rule_name=rule_name, title=redact_text(title), message=redact_text(message),
            severity=severity, alert_type=alert_type, labels=redact_labels(labels),
            started_at=started_at, channels=list(channels),
        )

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def active(self) -> bool:
        """Pending or firing."""
        return self.state in (AlertState.PENDING, AlertState.FIRING)

    @property
    def component(self) -> str | None:
        """The component this alert is about (label ``health.component`` or ``component``)."""
        return self.labels.get("health.component") or self.labels.get("component")

    def to_dict(self, *, with_events: bool = True) -> dict[str, Any]:
        """A JSON-ready view (times as epoch seconds plus ISO-8601 UTC strings)."""
        data: dict[str, Any] = {
            "id": self.id, "fingerprint": self.fingerprint, "rule_name": self.rule_name,
            "title": self.title, "message": self.message, "severity": self.severity.value,
            "alert_type": self.alert_type.value, "labels": dict(self.labels),
            "annotations": dict(self.annotations), "value": self.value,
            "state": self.state.value, "acknowledged": self.acknowledged,
            "channels": [c.value for c in self.channels], "notified": self.notified,
            "suppressed": self.suppressed, "escalation_level": self.escalation_level,
        }
        for name in _TIME_FIELDS:
            stamp = getattr(self, name)
            data[name] = stamp
            data[name + "_iso"] = iso_utc(stamp) if stamp is not None else None
        data["acknowledged_by"] = self.acknowledged_by
        data["resolved_by"] = self.resolved_by
        if with_events:
            data["events"] = [event.to_dict() for event in self.events]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Inverse of ``to_dict`` (events are loaded separately by the store). Text is
        redacted again: a row written by an older version may hold a secret."""
        return cls(
            id=str(data["id"]), fingerprint=str(data["fingerprint"]),
            rule_name=str(data["rule_name"]), title=redact_text(data["title"]),
            message=redact_text(data["message"]), severity=AlertSeverity(data["severity"]),
            alert_type=AlertType(data["alert_type"]),
            labels=redact_labels(dict(data.get("labels") or {})),
            annotations=redact_labels(dict(data.get("annotations") or {})),
            value=None if data.get("value") is None else float(data["value"]),
            state=AlertState(data["state"]),
            started_at=float(data.get("started_at") or 0.0),
            fired_at=_opt_float(data.get("fired_at")), last_eval=_opt_float(data.get("last_eval")),
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=_opt_float(data.get("acknowledged_at")),
            resolved_by=data.get("resolved_by"), resolved_at=_opt_float(data.get("resolved_at")),
            escalation_level=int(data.get("escalation_level") or 0),
            escalated_at=_opt_float(data.get("escalated_at")),
            keep_firing_since=_opt_float(data.get("keep_firing_since")),
            channels=[NotificationChannel(c) for c in data.get("channels") or []],
            notified=bool(data.get("notified")), suppressed=data.get("suppressed"),
        )


_TIME_FIELDS = (
    "started_at", "fired_at", "last_eval", "acknowledged_at", "resolved_at", "escalated_at",
    "keep_firing_since",
)


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def iso_utc(stamp: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string (``2026-01-02T03:04:05.000Z``)."""
    moment = datetime.fromtimestamp(stamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- templating ---------------------------------------------------------------------------

# {value}, {value:.2f}, {rule}, {labels[name]}, {labels.name}, and Prometheus' {{ $value }},
# {{ $labels.name }}, humanize*: see alerting/templates.py. Hand-rolled rather than
# str.format so a template from a rule file can never reach attributes of Python objects.


def format_value(value: float | None, spec: str | None = None) -> str:
    """How ``{value}`` renders: as Go prints a float64 (``{{ $value }}`` in Prometheus)."""
    if value is None:
        return ""
    return render_template("{value:" + spec + "}" if spec else "{value}", value=value,
                           labels={})


# --- silences ----------------------------------------------------------------------------

# Alertmanager's matcher syntax (pkg/labels/parse.go): whitespace is Go's \s (ASCII), the
# value may span lines; botmon's label names may hold dots (OpenTelemetry attributes)
_SPACE = "[\t\n\f\r ]*"
_MATCHER = re.compile(
    rf"{_SPACE}([A-Za-z_][\w.]*){_SPACE}(=~|!~|!=|=){_SPACE}(.*?){_SPACE}\Z", re.DOTALL,
)
_ESCAPED: Final = {"n": "\n", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class LabelMatcher:
    """``name op value`` with op ``=``, ``!=``, ``=~`` or ``!~`` (regexes fully anchored,
    as in Prometheus). A missing label matches as the empty string."""

    name: str
    op: str
    value: str
    _matcher: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the query engine's matcher: one implementation for selectors and silences
        try:
            matcher = Matcher(self.name, self.op, self.value)
        except ValueError as exc:
            if self.op not in ("=~", "!~"):
                raise
            raise ValueError(
                f"label matcher {self.name}{self.op}{self.value!r}: bad regex: {exc}"
            ) from None
        object.__setattr__(self, "_matcher", matcher)

    @classmethod
    def parse(cls, text: str) -> LabelMatcher:
        """Parse ``name="value"``, ``name!=v``, ``name=~"re"``, ``name!~re`` as
        Alertmanager and amtool parse a matcher.

        The value may be in double quotes. Inside it (quoted or not) ``\\\\``, ``\\"``
        and ``\\n`` are undone to a backslash, a double quote and a line feed; any other
        backslash is itself (``\\d`` stays ``\\d``, as a regex wants it). Raises
        ValueError naming the text when it is not a matcher, a double quote inside the
        value is not escaped, the closing quote is missing, or the value is not valid
        Unicode.
        """
        found = _MATCHER.match(text) if isinstance(text, str) else None
        if not found:
            raise ValueError(f"not a label matcher: {text!r} (expected name=value, !=, =~ or !~)")
        name, op, raw = found.groups()
        return cls(name, op, _unquote(raw, text))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self._matcher.matches(labels)

    def __str__(self) -> str:
        """As Alertmanager writes a matcher (see :func:`matcher_text`)."""
        return matcher_text(self.name, self.op, self.value)


def matcher_text(name: str, op: str, value: str) -> str:
    """``name op "value"`` as Alertmanager writes a matcher (OpenMetrics escaping: ``\\``,
    ``"`` and line feeds escaped); ``LabelMatcher.parse`` reads it back."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{name}{op}"{escaped}"'


def _unquote(raw: str, matcher: str) -> str:
    """A matcher's value as written (``raw``) as Alertmanager reads it (see
    ``LabelMatcher.parse``); ValueError naming ``matcher`` when it is malformed."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    if valid_text(body) != body:
        raise ValueError(f"label matcher {matcher!r}: the value is not valid UTF-8 text "
                         "(a lone surrogate)")
    out: list[str] = []
    i, last = 0, len(body) - 1
    while i <= last:
        ch = body[i]
        if ch == "\\" and i < last:
            escaped = body[i + 1]
            out.append(_ESCAPED.get(escaped, "\\" + escaped))  # else a literal backslash
            i += 2
            continue
        if ch == '"':
            if not quoted or i < last:
                raise ValueError(f"label matcher {matcher!r}: unescaped double quote in the "
                                 'value (write \\" for a double quote inside it)')
            quoted = False  # the closing quote
        else:
            out.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"label matcher {matcher!r}: the value's closing double quote is "
                         "missing")
    return "".join(out)


MatcherSpec: TypeAlias = "LabelMatcher | str | Mapping[str, str]"


def parse_matchers(spec: MatcherSpec | Iterable[LabelMatcher | str]) -> list[LabelMatcher]:
    """Matchers from a dict (equality), one string, or a list of strings/LabelMatchers."""
    if isinstance(spec, LabelMatcher):
        return [spec]
    if isinstance(spec, str):
        return [LabelMatcher.parse(spec)]
    if isinstance(spec, Mapping):
        return [LabelMatcher(str(k), "=", str(v)) for k, v in spec.items()]
    return [m if isinstance(m, LabelMatcher) else LabelMatcher.parse(m) for m in spec]


@dataclass
class Silence:
    """Mutes notifications of matching alerts between ``starts_at`` and ``ends_at`` (epoch
    seconds, UTC). A silenced alert still goes through its states; it is only not notified."""

    id: str
    matchers: list[LabelMatcher]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one label matcher")
        if not (math.isfinite(self.starts_at) and math.isfinite(self.ends_at)):
            raise ValueError("silence times must be finite epoch seconds")
        if self.ends_at <= self.starts_at:
            raise ValueError(
                f"silence ends_at ({iso_utc(self.ends_at)}) must be after starts_at "
                f"({iso_utc(self.starts_at)})"
            )

    def active_at(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str], now: float) -> bool:
        """True while active and every matcher matches ``labels``."""
        return self.active_at(now) and all(m.matches(labels) for m in self.matchers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [{"name": m.name, "op": m.op, "value": m.value} for m in self.matchers],
            "starts_at": self.starts_at, "ends_at": self.ends_at,
            "created_by": self.created_by, "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        return cls(
            id=str(data["id"]),
            matchers=[LabelMatcher(m["name"], m["op"], m["value"]) for m in data["matchers"]],
            starts_at=float(data["starts_at"]), ends_at=float(data["ends_at"]),
            created_by=str(data.get("created_by") or ""), comment=str(data.get("comment") or ""),
        )


def to_epoch(moment: float | datetime) -> float:
    """Epoch seconds from a number or a datetime (a naive datetime is taken as UTC)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(moment)
