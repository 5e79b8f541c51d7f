"""Evaluation of condition syntax trees over a :class:`MetricHistory`.

Semantics follow PromQL (Prometheus 2.42) so that an exported rule fires on the same
series in Prometheus as here:

* a series selector gives each matching series' latest point within the lookback;
* ``rate``/``increase``/``delta`` use Prometheus' extrapolation and counter-reset handling;
* comparisons *filter*: they keep the series for which they hold, with the left value;
* arithmetic and comparisons between two series sets match series with equal labels; a
  labelless side (``cpu``, ``sum(x)``, a number) applies to every series of the other;
* ``a and b`` keeps series of ``a`` that ``b`` also has (any of ``b`` when either side is
  labelless); ``a or b`` is ``a`` plus the series of ``b`` that ``a`` lacks;
* arithmetic follows IEEE floats: ``x / 0`` is infinite, ``0 / 0`` is NaN, and NaN never
  satisfies a comparison.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from functools import reduce
from itertools import chain, repeat
from operator import add, is_, itemgetter, le, sub
from typing import Any, NamedTuple

from otel_botmon.query import _maths as pm
from otel_botmon.query._columns import Edges, HistogramRow, Selection
from otel_botmon.query._history import MetricHistory
from otel_botmon.query._matching import match_set, match_vectors
from otel_botmon.query._nodes import (
    COMPARISONS,
    Binary,
    Call,
    Derived,
    Node,
    Number,
    Selector,
)
from otel_botmon.query._types import (
    BOUNDS,
    COUNTS,
    EMPTY_LABELS,
    SUM,
    TOTAL,
    Labels,
    MetricKind,
    Vector,
)

__all__ = ["Value", "evaluate_node", "node_key"]

Value = float | Vector
Points = list[tuple[float, float]]


_MISSING = object()


def node_key(node: Node) -> Hashable:
    """A structural key of ``node``: equal for equal sub-expressions of any condition."""
    key = node.__dict__.get("_key")
    if key is None:
        key = _build_key(node)
        object.__setattr__(node, "_key", key)  # nodes are frozen; the key is a cache
    return key


def _build_key(node: Node) -> Hashable:
    if isinstance(node, Number):
        return ("n", node.value)
    if isinstance(node, Derived):
        return node_key(node.expansion)
    if isinstance(node, Selector):
        return ("s", node.metric, node.component, _matcher_key(node), node.range_s)
    if isinstance(node, Call):
        return ("c", node.func, tuple(node_key(a) for a in node.args), node.by, node.quantile,
                node.without)
    if isinstance(node, Binary):
        return ("b", node.op, node_key(node.left), node_key(node.right),
                node.left.labelless, node.right.labelless, node.bool_, node.matching)
    raise TypeError(f"unknown node {type(node).__name__}")  # pragma: no cover


def _matcher_key(sel: Selector) -> Hashable:
    return tuple((m.label, m.op, m.value) for m in sel.matchers)


def evaluate_node(node: Node, history: MetricHistory, now: float) -> Value:
    """The value of ``node`` at ``now``: a float for constant expressions, else series.

    Results are memoized per ``now`` in the history, shared by every condition; callers
    must not modify a returned vector.
    """
    if isinstance(node, Number):
        return node.value
    memo = history.memo(now)
    key = node_key(node)
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = memo[key] = _compute(node, history, now)
    return value  # type: ignore[no-any-return]


def _compute(node: Node, history: MetricHistory, now: float) -> Value:
    if isinstance(node, Derived):
        return evaluate_node(node.expansion, history, now)
    if isinstance(node, Selector):
        return _instant(node, history, now)
    if isinstance(node, Call):
        return _call(node, history, now)
    if isinstance(node, Binary):
        left = evaluate_node(node.left, history, now)
        if (node.op in ("and", "unless") and not isinstance(left, float) and not left
                and not _may_fail(node.right)):
            return {}  # nothing on the left: the right side cannot add anything
        right = evaluate_node(node.right, history, now)
        if node.op in ("and", "or", "unless"):
            if node.matching is not None:
                return match_set(node.op, node.matching, _as_vector(left), _as_vector(right))
            return _set_op(node, _as_vector(left), _as_vector(right))
        if node.matching is not None:
            return match_vectors(node.op, node.matching, node.bool_, _as_vector(left),
                                 _as_vector(right))
        return _binary(node, left, right)
    raise TypeError(f"unknown node {type(node).__name__}")  # pragma: no cover - parser bug


def _may_fail(node: Node) -> bool:
    """Whether evaluating ``node`` can fail (a vector matching of ``on``/``ignoring``
    whose series do not pair up). PromQL evaluates both sides of ``and``/``unless``, so
    such a right side fails the expression even when the left side has no series."""
    found = _MAY_FAIL.get(node)
    if found is None:
        if isinstance(node, Binary):
            found = ((node.matching is not None and node.op not in ("and", "or", "unless"))
                     or _may_fail(node.left) or _may_fail(node.right))
        elif isinstance(node, Call):
            found = any(map(_may_fail, node.args))
        elif isinstance(node, Derived):
            found = _may_fail(node.expansion)
        else:
            found = False
        _MAY_FAIL[node] = found
    return found


_MAY_FAIL: weakref.WeakKeyDictionary[Node, bool] = weakref.WeakKeyDictionary()


# --- selectors and windows ----------------------------------------------------------


def _select(sel: Selector, history: MetricHistory, kind: MetricKind | None) -> Selection | None:
    if not sel.matchers:
        return history.selection(sel.metric, kind)
    return history.selection(sel.metric, kind, sel.where, _matcher_key(sel))


def _values_of(sel: Selector, history: MetricHistory) -> Selection | None:
    """The selection of a selector that reads numbers: a scalar metric, or a histogram's
    ``.count``/``.sum``; None for a whole histogram (or no such metric)."""
    if sel.component is not None:
        return _select(sel, history, MetricKind.HISTOGRAM)
    selection = _select(sel, history, None)
    if selection is None or selection.kind is MetricKind.HISTOGRAM:
        return None
    return selection


_COMPONENT: dict[str, Callable[[Any], float]] = {
    "count": itemgetter(TOTAL), "sum": itemgetter(SUM),
}


def _instant(sel: Selector, history: MetricHistory, now: float) -> Vector:
    component = sel.component
    selection = _values_of(sel, history)
    if selection is None:
        return {}
    labels, values, others = history.current(selection, now)
    if component is not None:
        part = _COMPONENT[component]
        out = dict(zip(labels, map(part, values), strict=True))
        out.update((lab, part(point)) for lab, point in others)
        return _drop_absent(sel, history, out)
    out = dict(zip(labels, values, strict=True))
    out.update(others)
    return out


def _instant_values(sel: Selector, history: MetricHistory, now: float) -> list[float]:
    """The values of ``_instant(sel)`` (no component), in its order, without labels."""
    selection = _values_of(sel, history)
    if selection is None:
        return []
    _, values, others = history.current(selection, now)
    if not others:
        return list(values)
    return [*values, *map(_SECOND, others)]


def _windows(sel: Selector, history: MetricHistory, now: float) -> list[tuple[Labels, Points]]:
    assert sel.range_s is not None
    component = sel.component
    selection = _values_of(sel, history)
    if selection is None:
        return []
    windows = history.points(selection, now - sel.range_s, now)
    if component is None:
        return windows
    part = _COMPONENT[component]
    absent = history.absent_components
    return [(labels, [(t, part(p)) for t, p in points]) for labels, points in windows
            if not absent or (sel.metric, component, labels) not in absent]


def _drop_absent(sel: Selector, history: MetricHistory, out: Vector) -> Vector:
    """``out`` without the series whose ``.count``/``.sum`` was never given."""
    absent = history.absent_components
    if absent and sel.component is not None:
        for labels in [k for k in out if (sel.metric, sel.component, k) in absent]:
            del out[labels]
    return out


def _changes(
    sel: Selector, history: MetricHistory, now: float, *, counter: bool, per_second: bool
) -> Vector:
    """rate/increase/delta of every selected series: from the window's first and last
    point for series clean throughout it (computed for all of them at once), else from
    all its points."""
    assert sel.range_s is not None
    start = now - sel.range_s
    component = sel.component
    selection = _values_of(sel, history)
    if selection is None:
        return {}
    edges = history.edges(selection, start, now, resets=counter)
    out: Vector = {}
    if edges.labels:
        first, last = edges.first, edges.last
        if component is not None:
            part = _COMPONENT[component]
            first, last = list(map(part, first)), list(map(part, last))
        shape = pm.window(edges.n, edges.t0, edges.t1, start, now, per_second=per_second)
        if shape is not None:
            change = list(map(sub, last, first))
            out = dict(zip(edges.labels, pm.extrapolate(shape, change, first, counter=counter),
                           strict=True))
    for labels, points in edges.others:
        if component is not None:
            part = _COMPONENT[component]
            points = [(t, part(p)) for t, p in points]
        value = pm.extrapolated_change(points, start, now, counter=counter,
                                       per_second=per_second)
        if value is not None:
            out[labels] = value
    return _drop_absent(sel, history, out)


_OVER_TIME: dict[str, Callable[[list[float]], float]] = {
    "avg_over_time": pm.avg_over_time,
    "min_over_time": pm.min_over_time,
    "max_over_time": pm.max_over_time,
    "sum_over_time": pm.sum_over_time,
    "count_over_time": lambda vs: float(len(vs)),
}

_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "sum": pm.aggregate_sum,
    "avg": pm.aggregate_avg,
    "min": pm.aggregate_min,
    "max": pm.aggregate_max,
    "count": lambda vs: float(len(vs)),
}


def _call(node: Call, history: MetricHistory, now: float) -> Value:
    func = node.func
    if func in ("rate", "increase", "delta"):
        sel = node.args[0]
        assert isinstance(sel, Selector)
        return _changes(sel, history, now, counter=func != "delta", per_second=func == "rate")
    if func in _OVER_TIME:
        sel = node.args[0]
        assert isinstance(sel, Selector)
        reduce = _OVER_TIME[func]
        return {
            labels: reduce([v for _, v in points])
            for labels, points in _windows(sel, history, now)
        }
    if func == "histogram_quantile":
        return _quantile(node, history, now)
    if func == "abs":
        arg = evaluate_node(node.args[0], history, now)
        return abs(arg) if isinstance(arg, float) else {k: abs(v) for k, v in arg.items()}
    sel = node.args[0]
    if (not node.by and not node.without and isinstance(sel, Selector)
            and sel.range_s is None and sel.component is None):
        # one group over a plain selector: the values only, in the selector's order
        values = _instant_values(sel, history, now)
        return {EMPTY_LABELS: _AGGREGATE[func](values)} if values else {}
    arg = _as_vector(evaluate_node(sel, history, now))
    return _aggregate(func, arg, node.by or (), node.without)


def _aggregate(func: str, vector: Vector, by: tuple[str, ...], without: bool = False) -> Vector:
    if not by and not without:  # one group: no labels to compute per series
        return {EMPTY_LABELS: _AGGREGATE[func](list(vector.values()))} if vector else {}
    reduce = _AGGREGATE[func]
    if without:
        groups: dict[Labels, list[float]] = {}
        for labels, value in vector.items():
            groups.setdefault(labels.without(by), []).append(value)
        return {labels: reduce(values) for labels, values in groups.items()}
    # group by the values of the `by` labels (a tuple: hashed in C), and make each
    # group's labels once
    keyed: dict[tuple[str | None, ...], list[float]] = {}
    for key, value in zip(Labels.values_of_many(vector, by), vector.values(), strict=True):
        group = keyed.get(key)
        if group is None:
            keyed[key] = [value]
        else:
            group.append(value)
    return {Labels.from_values(by, key): reduce(values) for key, values in keyed.items()}


def _quantile(node: Call, history: MetricHistory, now: float) -> Vector:
    sel = node.args[0]
    assert isinstance(sel, Selector) and sel.range_s is not None and node.quantile is not None
    q = node.quantile
    rates = _bucket_rates(sel, history, now)
    if not rates.others and (node.by is None or node.by == ()):
        # every series in one layout, end to end: the branches below for one group or
        # none, on the flat rates (no pair per series)
        if not rates.labels or not rates.bounds:
            return {}  # no buckets (a rule test's _count and _sum only): no quantile
        if node.by is None:
            return dict(zip(rates.labels, pm.histogram_quantiles(
                q, rates.bounds, rates.series_rates(), ascending=rates.ascending(),
            ), strict=True))
        width = len(rates.bounds)
        flat = rates.flat  # a bucket's rates are every width-th, added in series order
        total = [reduce(add, flat[k::width]) for k in range(width)]
        return {EMPTY_LABELS: pm.histogram_quantile(q, rates.bounds, total)}
    # as Prometheus, which reads the quantile from bucket series: a series without
    # buckets gives none, and counts in no group
    by_series = {labels: pair for labels, pair in rates.by_series().items() if pair[0]}
    if node.by is None:
        pairs = list(by_series.values())
        if pairs and all(map(is_, map(_FIRST, pairs), repeat(pairs[0][0]))):  # one layout
            return dict(zip(by_series, pm.histogram_quantiles(q, pairs[0][0],
                                                              map(_SECOND, pairs)),
                            strict=True))
        return {labels: pm.histogram_quantile(q, bounds, r)
                for labels, (bounds, r) in by_series.items()}
    by = node.by
    # sum the bucket rates per group; series with the same bucket layout add as vectors
    members: dict[Labels, list[tuple[tuple[float, ...], list[float]]]] = {}
    if by:
        for labels, pair in by_series.items():
            members.setdefault(Labels.from_values(by, labels.values_of(by)), []).append(pair)
    elif by_series:
        members[EMPTY_LABELS] = list(by_series.values())
    out: Vector = {}
    for labels, pairs in members.items():
        layouts = _sum_by_layout(pairs)
        if len(layouts) == 1:
            [(bounds, total)] = layouts.items()
            out[labels] = pm.histogram_quantile(q, bounds, total)
        else:
            out[labels] = pm.histogram_quantile(q, *pm.merge_buckets(layouts.items()))
    return out


def _sum_by_layout(
    pairs: list[tuple[tuple[float, ...], list[float]]],
) -> dict[tuple[float, ...], list[float]]:
    """Bucket bounds -> summed rates of ``(bounds, rates)`` pairs, added in order."""
    if (pairs and all(map(is_, map(_FIRST, pairs), repeat(pairs[0][0])))
            and len(set(map(len, map(_SECOND, pairs)))) == 1):
        # one layout (one bounds object, as the SDK hands them): each bucket's rates
        # added left to right by a C-level reduce, the same additions in the same order
        columns = zip(*map(_SECOND, pairs), strict=True)
        return {pairs[0][0]: [reduce(add, column) for column in columns]}
    layouts: dict[tuple[float, ...], list[float]] = {}
    current_bounds: tuple[float, ...] | None = None
    current: list[float] = []
    for bounds, r in pairs:
        if bounds is current_bounds:  # the usual case: one layout, one tuple object
            current = list(map(add, current, r))
            continue
        if current_bounds is not None:
            layouts[current_bounds] = current
        total = layouts.get(bounds)
        current = r if total is None else list(map(add, total, r))
        current_bounds = bounds
    if current_bounds is not None:
        layouts[current_bounds] = current
    return layouts


class BucketRates(NamedTuple):
    """Per-series bucket rates over one window: the series clean throughout it with one
    bucket layout (``bounds``) end to end in ``flat`` (``len(bounds)`` rates a series, in
    the order of ``labels``; no object per series), then ``others``, one by one."""

    labels: Sequence[Labels]
    bounds: tuple[float, ...]
    flat: list[float]
    others: dict[Labels, tuple[tuple[float, ...], list[float]]]

    def series_rates(self) -> Iterator[list[float]]:
        """The rates of each series of ``flat``, in order."""
        width, flat = len(self.bounds) or 1, self.flat  # no bounds: no series either
        return (flat[k:k + width] for k in range(0, len(flat), width))

    def ascending(self) -> bool:
        """Whether the rates of every series of ``flat`` ascend bucket by bucket (no NaN):
        checked for all series at once, a pair of buckets at a time."""
        width, flat = len(self.bounds), self.flat
        return all(all(map(le, flat[k::width], flat[k + 1::width])) for k in range(width - 1))

    def by_series(self) -> dict[Labels, tuple[tuple[float, ...], list[float]]]:
        """Every series' ``(bounds, rates)``: those of ``flat`` first, then ``others``."""
        out = dict(zip(self.labels, zip(repeat(self.bounds), self.series_rates()),
                       strict=False))
        out.update(self.others)
        return out


def _bucket_rates(sel: Selector, history: MetricHistory, now: float) -> BucketRates:
    """Per series, bucket rates over the selector's window (memoized: quantiles of the same
    window share them)."""
    memo = history.memo(now)
    key = ("bucket_rates", node_key(sel))
    cached = memo.get(key)
    if cached is None:
        assert sel.range_s is not None
        start = now - sel.range_s
        labels: Sequence[Labels] = ()
        bounds: tuple[float, ...] = ()
        flat: list[float] = []
        others: dict[Labels, tuple[tuple[float, ...], list[float]]] = {}
        selection = _select(sel, history, MetricKind.HISTOGRAM)
        edges = history.edges(selection, start, now) if selection is not None else None
        if edges is not None and edges.n >= 2 and edges.labels:
            # series clean throughout the window share its shape: one extrapolation
            shape = pm.window(edges.n, edges.t0, edges.t1, start, now, per_second=True)
            uniform = _uniform_bucket_rates(edges, shape)
            if uniform is not None:
                labels = edges.labels
                bounds, flat = uniform
            else:
                for lab, first, last in zip(edges.labels, edges.first, edges.last,
                                            strict=True):
                    layout = last[BOUNDS]
                    if first[BOUNDS] is not layout and first[BOUNDS] != layout:
                        continue
                    first_counts = first[COUNTS]
                    others[lab] = (layout, pm.extrapolate(
                        shape, list(map(sub, last[COUNTS], first_counts)), first_counts,
                        counter=True,
                    ))
        for lab, points in edges.others if edges is not None else ():
            result = pm.bucket_rates(points, start, now) if len(points) >= 2 else None
            if result is not None:
                others[lab] = result
        cached = memo[key] = BucketRates(labels, bounds, flat, others)
    return cached


_BOUNDS_OF = itemgetter(BOUNDS)
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_COUNTS_OF = itemgetter(COUNTS)


def _uniform_bucket_rates(
    edges: Edges, shape: pm.Window | None,
) -> tuple[tuple[float, ...], list[float]] | None:
    """The bucket layout and the bucket rates of every series of ``edges`` end to end,
    when they all have the same layout (one bounds object, as the SDK hands them): the
    buckets of all series make one computation. None otherwise."""
    first, last = edges.first, edges.last
    first_counts: Sequence[float]
    last_counts: Sequence[float]
    if (first.__class__ is HistogramRow and last.__class__ is HistogramRow
            and first.bounds is last.bounds):
        # two whole collects (every series, one layout): their counts are end to end
        bounds = last.bounds
        first_counts, last_counts = first.counts, last.counts
    else:
        bounds = last[0][BOUNDS]
        if not (all(map(is_, map(_BOUNDS_OF, last), repeat(bounds)))
                and all(map(is_, map(_BOUNDS_OF, first), repeat(bounds)))):
            return None
        first_counts = list(chain.from_iterable(map(_COUNTS_OF, first)))
        last_counts = list(chain.from_iterable(map(_COUNTS_OF, last)))
    if not len(first_counts) == len(last_counts) == len(bounds) * len(first):
        return None
    return bounds, pm.extrapolate(shape, list(map(sub, last_counts, first_counts)),
                                  first_counts, counter=True)


# --- operators ----------------------------------------------------------------------


def _as_vector(value: Value) -> Vector:
    return {EMPTY_LABELS: value} if isinstance(value, float) else value


def _arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return pm.go_div(a, b)
    try:  # "%": like Go's math.Mod, the sign follows the dividend
        return math.fmod(a, b)
    except ValueError:
        return math.nan


def _compare(op: str, a: float, b: float) -> bool:
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == "==":
        return a == b
    return a != b


def _apply(op: str, a: float, b: float) -> float | None:
    """Arithmetic result, or for comparisons the left value when it holds, else None."""
    if op in COMPARISONS:
        return a if _compare(op, a, b) else None
    return _arith(op, a, b)


def _apply_bool(op: str, a: float, b: float) -> float:
    return 1.0 if _compare(op, a, b) else 0.0


def _binary(node: Binary, left: Value, right: Value) -> Value:
    op = node.op
    if isinstance(left, float) and isinstance(right, float):
        if node.bool_:
            return _apply_bool(op, left, right)
        if op in COMPARISONS:
            return {EMPTY_LABELS: left} if _compare(op, left, right) else {}
        return _arith(op, left, right)
    if node.bool_:
        return _binary_bool(node, left, right)
    out: Vector = {}
    if isinstance(right, float):
        assert isinstance(left, dict)
        for labels, a in left.items():
            v = _apply(op, a, right)
            if v is not None:
                out[labels] = v
        return out
    if isinstance(left, float):
        for labels, b in right.items():
            v = _apply(op, left, b)
            if v is not None:
                # PromQL: a number compared with series keeps the series' value
                out[labels] = b if op in COMPARISONS else v
        return out
    if node.right.labelless and not node.left.labelless:
        for b in right.values():  # at most one: broadcast over the left side
            for labels, a in left.items():
                v = _apply(op, a, b)
                if v is not None:
                    out[labels] = v
        return out
    if node.left.labelless and not node.right.labelless:
        for a in left.values():
            for labels, b in right.items():
                v = _apply(op, a, b)
                if v is not None:
                    out[labels] = v
        return out
    for labels, a in left.items():
        if labels in right:
            v = _apply(op, a, right[labels])
            if v is not None:
                out[labels] = v
    return out


def _binary_bool(node: Binary, left: Value, right: Value) -> Vector:
    """A comparison with ``bool``: 1 or 0 for every pair botmon's matching makes."""
    op = node.op
    if isinstance(right, float):
        assert isinstance(left, dict)
        return {labels: _apply_bool(op, a, right) for labels, a in left.items()}
    if isinstance(left, float):
        return {labels: _apply_bool(op, left, b) for labels, b in right.items()}
    if node.right.labelless and not node.left.labelless:
        return {labels: _apply_bool(op, a, b) for b in right.values()
                for labels, a in left.items()}
    if node.left.labelless and not node.right.labelless:
        return {labels: _apply_bool(op, a, b) for a in left.values()
                for labels, b in right.items()}
    return {labels: _apply_bool(op, a, right[labels]) for labels, a in left.items()
            if labels in right}


def _set_op(node: Binary, left: Vector, right: Vector) -> Vector:
    if node.op == "and":
        if node.left.labelless or node.right.labelless:
            return dict(left) if right else {}
        return {labels: v for labels, v in left.items() if labels in right}
    if node.op == "unless":
        if node.left.labelless or node.right.labelless:
            return {} if right else dict(left)
        return {labels: v for labels, v in left.items() if labels not in right}
    out = dict(left)
    for labels, v in right.items():
        out.setdefault(labels, v)
    return out
