"""Alerts as telemetry: the ``botmon.alerts.active`` gauge and one span event per change.

``botmon.alerts.active{alert.severity}`` is an observable gauge summed over every live
evaluator in the process (registered once; the telemetry state moves it onto every new
meter). Each batch of
state changes becomes one span ``botmon.alerts`` with one event per change (``alert.fired``,
``alert.resolved``, ...) and one log record on the ``otel_botmon.alerting`` logger, which
an OpenTelemetry logging handler turns into OTel log records.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from otel_botmon import conventions as conv
from otel_botmon._internal import report_internal_error
from otel_botmon.alerting.model import AlertSeverity

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation

    from otel_botmon.alerting.evaluator import AlertEvaluator
    from otel_botmon.alerting.model import Alert, AlertEvent

logger = logging.getLogger("otel_botmon.alerting")

SPAN_NAME = "botmon.alerts"
MAX_SPAN_EVENTS = 128

_evaluators: weakref.WeakSet[AlertEvaluator] = weakref.WeakSet()
_lock = threading.Lock()
_registration: Any = None
# Whether this pipeline has seen an evaluator (then the gauge reports, zeros included).
_reported = [False]


def _new_pipeline() -> None:
    _reported[0] = bool(_evaluators)


def track(evaluator: AlertEvaluator) -> None:
    """Count ``evaluator``'s firing alerts in the gauge (for as long as it lives)."""
    with _lock:
        _evaluators.add(evaluator)
        _reported[0] = True
    ensure_gauge()


def untrack(evaluator: AlertEvaluator) -> None:
    """Stop counting ``evaluator`` (its owner closed it)."""
    with _lock:
        _evaluators.discard(evaluator)


def ensure_gauge() -> None:
    """Register the observable gauge (once: the state re-registers it on new meters)."""
    global _registration
    try:
        from otel_botmon._state import STATE, ObservableRegistration

        with _lock:
            if _registration is not None:
                return
            spec = conv.ALERTS_ACTIVE
            _registration = ObservableRegistration(
                lambda meter, callback: meter.create_observable_gauge(
                    spec.name, callbacks=[callback], unit=spec.unit,
                    description=spec.description),
                lambda: _observe(None))
        STATE.on_change(_new_pipeline)
        STATE.observe(_registration)
    except Exception as exc:
        report_internal_error("alerting.telemetry", exc)


def _observe(options: CallbackOptions | None) -> Iterable[Observation]:
    from opentelemetry.metrics import Observation

    totals = dict.fromkeys(AlertSeverity, 0)
    with _lock:
        evaluators = list(_evaluators)
    if not evaluators and not _reported[0]:
        return []  # no alert engine in this pipeline: no gauge (it outlives pipelines)
    for evaluator in evaluators:
        for severity, count in evaluator.firing_counts().items():
            totals[severity] += count
    return [Observation(count, {conv.ALERT_SEVERITY: sev.value}) for sev, count in totals.items()]


def record_events(changes: Sequence[tuple[Alert, AlertEvent]]) -> None:
    """One span with an event per state change, and a log line each. Never raises."""
    if not changes:
        return
    try:
        ensure_gauge()
        from otel_botmon import telemetry

        tracer = telemetry.get_tracer()
        with tracer.start_as_current_span(SPAN_NAME) as span:
            span.set_attribute("botmon.alerts.changes", len(changes))
            if len(changes) > MAX_SPAN_EVENTS:
                # the SDK keeps 128 events per span: say how many did not fit
                span.set_attribute("botmon.alerts.changes_not_recorded",
                                   len(changes) - MAX_SPAN_EVENTS)
            for alert, event in changes[:MAX_SPAN_EVENTS]:
                span.add_event(f"alert.{event.kind.value}", attributes=_attributes(alert, event))
        if logger.isEnabledFor(logging.INFO):
            from otel_botmon.redaction import redact_text

            for alert, event in changes:
                logger.info(
                    "alert %s: %s [%s] %s (id=%s, value=%s%s)", event.kind.value,
                    alert.labels.get("alertname", alert.rule_name), alert.severity.value,
                    redact_text(alert.title), alert.id, alert.value,
                    f", not notified: {event.suppressed}" if event.suppressed else "",
                )
    except Exception as exc:
        report_internal_error("alerting.telemetry", exc)


def _attributes(alert: Alert, event: AlertEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "alert.id": alert.id,
        "alert.name": alert.labels.get("alertname", alert.rule_name),
        "alert.rule": alert.rule_name,
        "alert.fingerprint": alert.fingerprint,
        conv.ALERT_SEVERITY: alert.severity.value,
        "alert.state": alert.state.value,
        "alert.notify": event.notify,
    }
    if alert.value is not None:
        attributes["alert.value"] = float(alert.value)
    if event.suppressed:
        attributes["alert.suppressed"] = event.suppressed
    component = alert.component
    if component:
        attributes[conv.HEALTH_COMPONENT] = component
    return attributes
