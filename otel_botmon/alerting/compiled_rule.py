"""A rule compiled once for the evaluator: its condition, its alerts, and the cached
labels and fingerprint of each series (computed once per series, not per cycle).

Rules that share a left-hand side (warning/critical pairs, many thresholds on one
metric) cost little more than one: the query engine memoizes per evaluation time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from otel_botmon.alerting.model import (
    ALERTNAME_LABEL,
    SEVERITY_LABEL,
    Alert,
    AlertRule,
    fingerprint,
    render_template,
)
from otel_botmon.alerting.templates import NO_EXTERNALS, Externals
from otel_botmon.redaction import REDACTED, is_sensitive_key, redact_text


class DuplicateAlertError(ValueError):
    """Two series of one evaluation that the rule's labels turn into one alert (a rule
    label replaced, or rendered away, the label that told them apart): as in Prometheus,
    the rule fails for that evaluation and its alerts keep their state."""


class SampleLike(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def value(self) -> float: ...


class ConditionLike(Protocol):
    """What ``otel_botmon.query.compile`` returns."""

    @property
    def comparison(self) -> str | None: ...
    def evaluate(self, history: Any, now: float) -> Sequence[SampleLike]: ...
    def values(self, history: Any, now: float) -> Sequence[SampleLike]: ...


Compiler = Callable[[str], ConditionLike]

_ORDERING = ("<", "<=", ">", ">=")
_MAX_IDENTITIES = 20_000  # cached series identities per rule (bounded memory)


def default_compiler(text: str) -> ConditionLike:
    from otel_botmon.query import compile

    return compile(text)


@dataclass
class CompiledRule:
    rule: AlertRule
    condition: ConditionLike
    alerts: dict[str, Alert] = field(default_factory=dict)
    """Fingerprint -> this rule's pending and firing alerts."""
    identities: dict[Any, tuple[str, dict[str, str]]] = field(default_factory=dict)
    metrics: frozenset[str] | None = None
    """The metric names the condition reads (None: the condition cannot tell)."""

    @classmethod
    def compile(cls, rule: AlertRule, compiler: Compiler | None = None) -> CompiledRule:
        """Compile ``rule.condition``: ``RuleSyntaxError`` (a ValueError) with the position
        on a syntax or name error; ValueError when ``recovery_threshold`` is set on a
        condition that is not a ``<``, ``<=``, ``>``, ``>=`` comparison."""
        condition = (compiler or default_compiler)(rule.condition)
        if rule.recovery_threshold is not None and condition.comparison not in _ORDERING:
            raise ValueError(
                f"AlertRule {rule.name!r}: recovery_threshold needs a condition of the form "
                f"'<value> <|<=|>|>= <threshold>', got {rule.condition!r}"
            )
        compiled = cls(rule, condition)
        referenced = getattr(condition, "referenced_metrics", None)
        if callable(referenced):
            compiled.metrics = frozenset(referenced())
        return compiled

    def matches(self, history: Any, now: float) -> Sequence[SampleLike]:
        """The series for which the condition holds, each with its left-hand-side value."""
        return self.condition.evaluate(history, now)

    def values(self, history: Any, now: float) -> Sequence[SampleLike]:
        """The left-hand side for every series (hysteresis)."""
        return self.condition.values(history, now)

    def identity(self, series: Mapping[str, str], value: float | None = None,
                 externals: Externals = NO_EXTERNALS) -> tuple[str, dict[str, str]]:
        """(fingerprint, alert labels) of a series: its labels + the rule's labels (their
        templates rendered with ``value`` and the series' labels, as Prometheus renders
        them at every evaluation) + ``alertname`` + ``severity`` (unless the rule's labels
        set one)."""
        if self.templated_labels:  # the labels may change with the value: never cached
            labels = self.alert_labels(series, value, externals)
            return fingerprint(self.rule.name, labels), labels
        try:
            found = self.identities.get(series)
        except TypeError:  # unhashable labels: no caching
            found = None
            labels = self.alert_labels(series)
            return fingerprint(self.rule.name, labels), labels
        if found is None:
            labels = self.alert_labels(series)
            found = (fingerprint(self.rule.name, labels), labels)
            if len(self.identities) >= _MAX_IDENTITIES:
                self.identities.clear()
            self.identities[series] = found
        return found

    def new_alert(self, labels: dict[str, str], value: float, now: float,
                  series: Mapping[str, str] | None = None,
                  externals: Externals = NO_EXTERNALS) -> Alert:
        """A new PENDING alert of this rule for a series (labels from ``identity``;
        ``series``: the series' own labels, which templates see as ``$labels``;
        ``externals``: ``$externalLabels`` and ``$externalURL``)."""
        rule = self.rule
        alert = Alert.new(
            rule_name=rule.name, title=rule.name, message="", severity=rule.severity,
            alert_type=rule.alert_type, labels=labels, started_at=now, channels=rule.channels,
        )
        alert.value = value
        render(alert, rule, series, externals)
        return alert

    @cached_property
    def templated_labels(self) -> bool:
        """Whether any of the rule's labels is a template (``{`` in its text)."""
        return any("{" in text for text in self.rule.labels.values())

    def alert_labels(self, series: Mapping[str, str], value: float | None = None,
                     externals: Externals = NO_EXTERNALS) -> dict[str, str]:
        labels = {str(k): str(v) for k, v in series.items()}
        rule = self.rule

        def fill(text: str) -> str:
            if "{" not in text:
                return text
            return render_template(text, value=value, labels=series, rule=rule.name,
                                   externals=externals)

        for name, text in rule.labels.items():
            if name in (ALERTNAME_LABEL, SEVERITY_LABEL):
                continue
            rendered = fill(text)
            if rendered:
                labels[name] = rendered
            else:  # as Prometheus: a rule label that renders empty removes the label
                labels.pop(name, None)
        # a rule may name its alerts (the warning and critical rules of one measure share
        # an alertname, as Alertmanager's inhibition expects); else the rule's name
        labels[ALERTNAME_LABEL] = rule.labels.get(ALERTNAME_LABEL) or rule.name
        # the rule's severity wins over a series' own `severity` label, as the exported
        # rule's `labels: {severity: ...}` does in Prometheus
        severity = fill(rule.labels.get(SEVERITY_LABEL, rule.severity.value))
        if not severity:  # a rule file's rule without severity: the series' own, if any
            severity = str(series.get(SEVERITY_LABEL, ""))
        if severity:
            labels[SEVERITY_LABEL] = severity
        else:
            labels.pop(SEVERITY_LABEL, None)
        return labels


def render(alert: Alert, rule: AlertRule, series: Mapping[str, str] | None = None,
           externals: Externals = NO_EXTERNALS) -> bool:
    """Fill the alert's title (``summary`` annotation, else the rule's description, else
    its name), message (``description`` annotation, else description, else condition) and
    annotations from the rule's templates with the alert's value, the series' labels
    (``series``; the alert's labels when not given) and ``externals``. True when anything
    changed."""
    labels = alert.labels if series is None else series

    def fill(text: str) -> str:
        # a template can quote any label: redacted like everything an alert shows
        return redact_text(render_template(text, value=alert.value, labels=labels,
                                           rule=rule.name, externals=externals))

    before = (alert.title, alert.message, alert.annotations)

    # by name too, as labels are: an annotation named api_key shows none
    alert.annotations = {k: REDACTED if is_sensitive_key(k) else fill(v)
                         for k, v in rule.annotations.items()}
    alert.title = fill(rule.annotations.get("summary") or rule.description or rule.name)
    alert.message = fill(rule.annotations.get("description") or rule.description or rule.condition)
    return before != (alert.title, alert.message, alert.annotations)
