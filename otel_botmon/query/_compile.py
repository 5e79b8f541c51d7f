"""The safe condition language of alert rules: compile once, evaluate every cycle.

>>> cond = compile_condition("win_rate < 50")
>>> cond.comparison, cond.threshold
('<', 50.0)

Conditions are parsed by a hand-written tokenizer and recursive-descent parser (never
``eval``); syntax errors, unknown metric or function names and type errors raise
:class:`RuleSyntaxError` with the column of the problem. The language is documented in
``docs/conditions.md`` (names, functions, units, semantics); it is a small, PromQL-shaped
language over the metric names of ``otel_botmon.conventions`` with dotted attribute names,
so that every condition also translates to PromQL (``alerting.promexport``).
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from itertools import compress, repeat, starmap

from otel_botmon.query._catalog import known_metric_kinds
from otel_botmon.query._eval import evaluate_node, node_key
from otel_botmon.query._history import MetricHistory
from otel_botmon.query._lexer import RuleSyntaxError
from otel_botmon.query._nodes import COMPARISONS, Binary, Derived, Node, Number, VType, selectors
from otel_botmon.query._parser import parse
from otel_botmon.query._types import EMPTY_LABELS, MetricKind, Sample, Vector

__all__ = ["Condition", "RuleSyntaxError", "compile_condition"]

_DEFAULT_METRICS = known_metric_kinds()
_ORDERINGS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_ORDERED = frozenset(_ORDERINGS)
_SEEN = object()  # memo marker: one rule has read this left side in this cycle


class Condition:
    """A compiled condition. Evaluation never raises for missing, vanished or retyped
    metrics: they simply yield no series."""

    def __init__(self, text: str, tree: Node) -> None:
        self.text = text
        self.tree = tree
        top = _top_comparison(tree)
        self._comparison_node = top
        self.comparison: str | None = top.op if top is not None else None
        """The top-level comparison operator (the leftmost one under and/or), if any."""
        self.threshold: float | None = (
            top.right.value if top is not None and isinstance(top.right, Number) else None
        )
        """The right-hand side of the top-level comparison when it is a constant."""
        self._ordered: tuple[str, Node, float] | None = None
        if (
            top is tree
            and top.op in _ORDERED
            and top.left.vtype is VType.VECTOR
            and isinstance(top.right, Number)
            and not math.isnan(top.right.value)
            and top.matching is None
        ):
            self._ordered = (top.op, top.left, top.right.value)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def evaluate(self, history: MetricHistory, now: float) -> list[Sample]:
        """The series for which the condition holds at ``now``, each with the value of the
        comparison's left-hand side and the series' labels (no labels for labelless
        expressions such as ``cpu > 90``)."""
        if self._ordered is not None:
            return self._evaluate_ordered(history, now, *self._ordered)
        return _samples(evaluate_node(self.tree, history, now))

    def values(self, history: MetricHistory, now: float) -> list[Sample]:
        """The left-hand side of the top-level comparison for every series, whether the
        comparison holds or not (for recovery thresholds and templates); the whole
        expression's value when there is no comparison."""
        node = self._comparison_node.left if self._comparison_node is not None else self.tree
        return _samples(evaluate_node(node, history, now))

    def _evaluate_ordered(
        self, history: MetricHistory, now: float, op: str, lhs: Node, threshold: float
    ) -> list[Sample]:
        # `series <op> constant`: the left side is evaluated once per cycle (memoized);
        # when several rules compare it, it is sorted once and each cuts at its threshold
        memo = history.memo(now)
        key = ("ordered", node_key(lhs))
        entry = memo.get(key)
        if entry is None:
            # the first rule on this left side this cycle: compare at C speed, no sort
            # (most left sides have one rule); a second one sorts for all that follow
            memo[key] = _SEEN
            vector = evaluate_node(lhs, history, now)
            assert isinstance(vector, dict)
            holds = map(_ORDERINGS[op], vector.values(), repeat(threshold))
            return list(starmap(Sample, compress(vector.items(), holds)))
        if entry is _SEEN:
            vector = evaluate_node(lhs, history, now)
            assert isinstance(vector, dict)
            if True in map(math.isnan, vector.values()):
                vector = {labels: v for labels, v in vector.items() if v == v}  # never match
            # sort positions by value: no pair per series, and no Labels hashing (which
            # runs in Python) in this pass over every series
            values = list(vector.values())
            order = sorted(range(len(values)), key=values.__getitem__)
            entry = memo[key] = (
                list(map(values.__getitem__, order)), list(map(list(vector).__getitem__, order))
            )
        keys, labels = entry
        if op == ">":
            lo, hi = bisect_right(keys, threshold), len(keys)
        elif op == ">=":
            lo, hi = bisect_left(keys, threshold), len(keys)
        elif op == "<":
            lo, hi = 0, bisect_left(keys, threshold)
        else:
            lo, hi = 0, bisect_right(keys, threshold)
        return [Sample(labels[i], keys[i]) for i in range(lo, hi)]

    def referenced_metrics(self) -> set[str]:
        """Names of the metrics the condition reads (derived values expanded)."""
        return {selector.metric for selector in selectors(self.tree)}


def compile_condition(
    text: str, extra_metrics: Mapping[str, MetricKind | str] | None = None
) -> Condition:
    """Compile ``text`` into a :class:`Condition`.

    ``extra_metrics`` declares metric names beyond ``conventions.py`` (e.g. a bot's own
    instruments) with their kind. Raises :class:`RuleSyntaxError` (a ``ValueError``) for
    any problem, with ``position`` the 0-based column.
    """
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a condition must be a string, got {type(text).__name__}", "", 0)
    metrics: Mapping[str, MetricKind] = _DEFAULT_METRICS
    if extra_metrics:
        metrics = {**_DEFAULT_METRICS, **{str(k): MetricKind(v) for k, v in extra_metrics.items()}}
    try:
        tree = parse(text, metrics)
    except RecursionError:  # belt and braces: depth is limited well below the stack
        raise RuleSyntaxError("expression nested too deeply", text, 0) from None
    return Condition(text, tree)


def _samples(value: float | Vector) -> list[Sample]:
    if isinstance(value, float):
        return [Sample(EMPTY_LABELS, value)]
    return [Sample(labels, v) for labels, v in value.items()]


def _top_comparison(node: Node) -> Binary | None:
    while True:
        if isinstance(node, Derived):
            node = node.expansion
        elif isinstance(node, Binary) and node.op in ("and", "or", "unless"):
            node = node.left
        elif isinstance(node, Binary) and node.op in COMPARISONS and not node.bool_:
            return node
        else:
            return None

