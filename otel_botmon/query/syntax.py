"""The syntax tree of a compiled condition (``Condition.tree``), for tools that translate
or inspect it: the PromQL exporter and the promtool-format rule tests."""

from __future__ import annotations

from otel_botmon.query._catalog import known_metric_kinds
from otel_botmon.query._eval import evaluate_node
from otel_botmon.query._lexer import DURATION_UNITS, RuleSyntaxError, read_string
from otel_botmon.query._matching import MatchingError
from otel_botmon.query._nodes import (
    COMPARISONS,
    Binary,
    Call,
    Derived,
    Matching,
    Node,
    Number,
    Selector,
    VType,
    selectors,
)
from otel_botmon.query._promql_notes import promql_differences

__all__ = [
    "COMPARISONS",
    "DURATION_UNITS",
    "Binary",
    "Call",
    "Derived",
    "Matching",
    "MatchingError",
    "Node",
    "Number",
    "RuleSyntaxError",
    "Selector",
    "VType",
    "evaluate_node",
    "known_metric_kinds",
    "promql_differences",
    "read_string",
    "selectors",
]
