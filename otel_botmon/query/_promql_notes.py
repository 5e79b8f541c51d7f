"""Where a condition, read as PromQL, means something else in Prometheus.

The condition language reads PromQL, with one deliberate difference in vector matching:
a *labelless* series (``sum(x)``, ``avg(x)``, ``cpu``, an aggregation ``by ()``) applies
to every series on the other side of an operator. PromQL matches series on all their
labels, so there the labelless value meets only a series that has no labels, and the
same text gives no result. ``botmon rules export`` writes the matching out, so exported
rules agree; a PromQL rule file read as written (``botmon rules test`` on a
third-party suite, or the condition pasted into Prometheus) does not. The rule loader
notes every such operator, at its position.
"""

from __future__ import annotations

from otel_botmon.query._nodes import Binary, Call, Node, VType

__all__ = ["promql_differences"]

_SET_OPS = frozenset({"and", "unless"})


def promql_differences(node: Node) -> list[tuple[int, str]]:
    """(position, note) for every operator of ``node`` whose result differs from
    PromQL's reading of the same text; empty when there is none."""
    out: list[tuple[int, str]] = []
    _walk(node, out)
    return out


def _walk(node: Node, out: list[tuple[int, str]]) -> None:
    # a derived value's own expansion is botmon's (its name is not PromQL anyway)
    if isinstance(node, Call):
        for arg in node.args:
            _walk(arg, out)
    elif isinstance(node, Binary):
        _walk(node.left, out)
        _walk(node.right, out)
        note = _broadcast(node)
        if note is not None:
            out.append((node.pos, note))


def _broadcast(node: Binary) -> str | None:
    left, right = node.left, node.right
    if node.matching is not None or node.op == "or":
        return None
    if left.vtype is not VType.VECTOR or right.vtype is not VType.VECTOR:
        return None
    if left.labelless == right.labelless:
        return None
    side = "right" if right.labelless else "left"
    if node.op in _SET_OPS:
        spelled = f"{node.op} on()"
    else:
        group = "group_left" if right.labelless else "group_right"
        spelled = f"{node.op}{' bool' if node.bool_ else ''} on() {group}"
    return (f"'{node.op}' applies its labelless {side} side to every series of the other "
            "(botmon's matching); PromQL matches it only with a series without labels, so "
            f"this text read by Prometheus or promtool gives another result; write "
            f"'{spelled}' to mean the same in both")
