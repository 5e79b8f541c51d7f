"""Recording rules: an expression evaluated every cycle and stored as a new series.

``record: job:trades:rate5m`` with ``expr: sum(rate(botmon.trades[5m]))`` writes the
result, at each evaluation, into the history as metric ``job:trades:rate5m`` (result
labels plus the rule's labels), so that alert rules read a KPI defined once by its name
(``job:trades:rate5m > 2``). As in Prometheus, a series the rule stops producing is
marked stale, and recording rules run before the alert rules of the same cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_botmon._internal import report_internal_error
from otel_botmon.query import Condition, Labels, MetricKind, compile_condition

__all__ = ["METRIC_NAME", "Recorder", "RecordingRule"]

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
"""A recorded series' name must be a Prometheus metric name (it is exported as is)."""


@dataclass(frozen=True)
class RecordingRule:
    """``record``: the series name; ``expr``: a condition-language expression;
    ``labels``: added to (and overriding) the result's labels."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not METRIC_NAME.match(self.record):
            raise ValueError(f"recording rule {self.record!r}: the name must be a "
                             "Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")


class Recorder:
    """Evaluates recording rules in order and writes their results into a history."""

    def __init__(self, rules: Iterable[RecordingRule] = ()) -> None:
        self._rules: list[tuple[RecordingRule, Condition]] = []
        self._previous: dict[int, set[Labels]] = {}
        self.on_error: Callable[[str, BaseException], None] | None = None
        """Called with the rule's name and the error when a rule fails (instead of the
        internal-error report)."""
        for rule in rules:
            self.add(rule)

    def add(self, rule: RecordingRule) -> None:
        """Compile and append ``rule`` (``RuleSyntaxError`` when it does not compile)."""
        self._rules.append((rule, compile_condition(rule.expr)))

    def __len__(self) -> int:
        return len(self._rules)

    def referenced_metrics(self) -> set[str]:
        """The metrics the rules read (so that the history ingests them)."""
        names: set[str] = set()
        for _, condition in self._rules:
            names |= condition.referenced_metrics()
        return names

    @property
    def rules(self) -> list[RecordingRule]:
        return [rule for rule, _ in self._rules]

    def record(self, history: Any, now: float) -> None:
        """Evaluate every rule at ``now`` and store its samples at ``now``. A rule that
        fails is reported as an internal error and records nothing this cycle."""
        for index, (rule, condition) in enumerate(self._rules):
            try:
                written: set[Labels] = set()
                samples = condition.evaluate(history, now)  # read whole, then written
                with history.batch():  # one row for the rule's samples, as a collect
                    for sample in samples:
                        labels, v = sample.labels, sample.value
                        out = _with_labels(labels, rule.labels) if rule.labels else labels
                        if out in written:
                            raise ValueError(
                                f"recording rule {rule.record!r}: two series with the "
                                f"labels {dict(out)} after applying the rule's labels"
                            )
                        written.add(out)
                        history.add_point(rule.record, out, v, now, kind=MetricKind.GAUGE)
                    for gone in self._previous.get(index, set()) - written:
                        history.mark_stale(rule.record, gone, now)
                self._previous[index] = written
            except Exception as exc:
                if self.on_error is not None:
                    self.on_error(rule.record, exc)
                else:
                    report_internal_error(f"alerting.record.{rule.record}", exc)


def _with_labels(labels: Labels, extra: Mapping[str, str]) -> Labels:
    """``labels`` with the rule's ``extra`` labels set; one set to ``""`` is removed, as
    Prometheus removes a label whose value is empty."""
    merged = {**labels, **extra}
    return Labels({k: v for k, v in merged.items() if v != "" or k not in extra})
