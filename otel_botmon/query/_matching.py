"""PromQL's explicit vector matching: ``on``/``ignoring`` with ``group_left``/
``group_right``, and ``bool`` comparisons, as Prometheus 2.42's ``VectorBinop`` and
``resultMetric`` do it (labels here are metric-name free, like Prometheus' result of an
arithmetic operation)."""

from __future__ import annotations

import math

from otel_botmon.query._nodes import COMPARISONS, Matching
from otel_botmon.query._types import Labels

__all__ = ["MatchingError", "match_set", "match_vectors"]

Vector = dict[Labels, float]


class MatchingError(ValueError):
    """Many-to-many matching where PromQL refuses it (the expression has no value)."""


def _signature(labels: Labels, matching: Matching) -> Labels:
    return labels.only(matching.labels) if matching.on else labels.without(matching.labels)


def _elem(op: str, a: float, b: float) -> tuple[float, bool]:
    if op in COMPARISONS:
        if op == ">":
            hit = a > b
        elif op == "<":
            hit = a < b
        elif op == ">=":
            hit = a >= b
        elif op == "<=":
            hit = a <= b
        elif op == "==":
            hit = a == b
        else:
            hit = a != b
        return a, hit
    if op == "+":
        return a + b, True
    if op == "-":
        return a - b, True
    if op == "*":
        return a * b, True
    if op == "/":
        if b == 0:
            if a == 0 or a != a:
                return math.nan, True
            return math.copysign(math.inf, a) * math.copysign(1.0, b), True
        return a / b, True
    try:
        return math.fmod(a, b), True
    except ValueError:
        return math.nan, True


def match_vectors(op: str, matching: Matching, as_bool: bool, lhs: Vector,
                  rhs: Vector) -> Vector:
    """``lhs <op> on/ignoring(...) [group_x(...)] rhs``."""
    if not lhs or not rhs:
        return {}
    one_to_many = matching.card == "one-to-many"
    if one_to_many:
        lhs, rhs = rhs, lhs
    right_sigs: dict[Labels, tuple[Labels, float]] = {}
    for labels, value in rhs.items():
        sig = _signature(labels, matching)
        if sig in right_sigs:
            side = "left" if one_to_many else "right"
            raise MatchingError(
                f"found duplicate series for the match group {dict(sig)} on the {side} "
                "hand-side of the operation; many-to-many matching not allowed"
            )
        right_sigs[sig] = (labels, value)
    out: Vector = {}
    matched: dict[Labels, set[Labels]] = {}
    for labels, value in lhs.items():
        sig = _signature(labels, matching)
        found = right_sigs.get(sig)
        if found is None:
            continue
        right_labels, right_value = found
        vl, vr = (right_value, value) if one_to_many else (value, right_value)
        result, keep = _elem(op, vl, vr)
        if as_bool:
            result = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = _result_labels(labels, right_labels, matching)
        seen = matched.get(sig)
        if matching.card == "one-to-one":
            if seen is not None:
                raise MatchingError("multiple matches for labels: many-to-one matching must "
                                    "be explicit (group_left/group_right)")
            matched[sig] = set()
        else:
            if seen is None:
                seen = matched[sig] = set()
            elif metric in seen:
                raise MatchingError("multiple matches for labels: grouping labels must "
                                    "ensure unique matches")
            seen.add(metric)
        out[metric] = result
    return out


def _result_labels(lhs: Labels, rhs: Labels, matching: Matching) -> Labels:
    items = dict(lhs)
    if matching.card == "one-to-one":
        keep = set(matching.labels)
        items = ({k: v for k, v in items.items() if k in keep} if matching.on
                 else {k: v for k, v in items.items() if k not in keep})
    for name in matching.include:  # copied from the "one" side
        value = rhs.get(name, "")
        if value:
            items[name] = value
        else:
            items.pop(name, None)
    return Labels(items)


def match_set(op: str, matching: Matching, lhs: Vector, rhs: Vector) -> Vector:
    """``and``/``or``/``unless`` with ``on(...)``/``ignoring(...)``."""
    right = {_signature(labels, matching) for labels in rhs}
    if op == "and":
        return {k: v for k, v in lhs.items() if _signature(k, matching) in right}
    if op == "unless":
        return {k: v for k, v in lhs.items() if _signature(k, matching) not in right}
    left = {_signature(labels, matching) for labels in lhs}
    out = dict(lhs)
    for labels, value in rhs.items():
        if _signature(labels, matching) not in left:
            out.setdefault(labels, value)
    return out
