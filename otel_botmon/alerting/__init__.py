"""The bundled alert engine: rules over the SDK's in-memory metrics -> alerts -> listeners.

The public names, grouped by the module they come from.
"""

from __future__ import annotations

from otel_botmon.alerting.default_rules import DEFAULT_RULES, default_rules
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.manager import AlertManager
from otel_botmon.alerting.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertRule,
    AlertSeverity,
    AlertState,
    AlertType,
    LabelMatcher,
    NotificationChannel,
    Silence,
    fingerprint,
    render_template,
)
from otel_botmon.alerting.rules import RuleFileError, RuleGroup, load_rule_file, load_rule_groups
from otel_botmon.alerting.store import AlertStore, StoreVersionError
from otel_botmon.alerting.store_file import StoreInUseError
from otel_botmon.query import Condition, MetricHistory, RuleSyntaxError, Sample, compile_condition

__all__ = [  # noqa: RUF022 - grouped by source module, as the house style asks
    # default_rules
    "DEFAULT_RULES",
    "default_rules",
    # evaluator
    "AlertEvaluator",
    # manager
    "AlertManager",
    # model
    "Alert",
    "AlertEvent",
    "AlertEventKind",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "AlertType",
    "LabelMatcher",
    "NotificationChannel",
    "Silence",
    "fingerprint",
    "render_template",
    # rules
    "RuleFileError",
    "RuleGroup",
    "load_rule_file",
    "load_rule_groups",
    # store
    "AlertStore",
    "StoreInUseError",
    "StoreVersionError",
    # query (the engine's face, re-exported where it always was)
    "Condition",
    "MetricHistory",
    "RuleSyntaxError",
    "Sample",
    "compile_condition",
]
