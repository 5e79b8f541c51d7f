"""The type rules of the condition language: typed nodes built from checked operands.

The parser (``_parser``) reads the grammar; every node it makes goes through
:class:`TypeChecker`, which knows what each function takes, what a binary operation
yields (number or series, labelless or not) and how ``not`` is pushed down, and rejects
what is ill-typed with the column of the offending operand.
"""

from __future__ import annotations

import dataclasses

from otel_botmon.query._catalog import AGGREGATIONS, QUANTILE_SHORTHANDS, RATE_FUNCTIONS
from otel_botmon.query._lexer import RuleSyntaxError
from otel_botmon.query._nodes import (
    COMPARISONS,
    Binary,
    Call,
    Derived,
    Matching,
    Node,
    Number,
    VType,
)

__all__ = ["MAX_DEPTH", "OVER_TIME", "TypeChecker"]

MAX_DEPTH = 100
OVER_TIME = frozenset(f"{a}_over_time" for a in AGGREGATIONS)
"""PromQL's own names: avg_over_time(x[5m]) is avg(x[5m])."""
_NEGATED = {">": "<=", "<=": ">", "<": ">=", ">=": "<", "==": "!=", "!=": "=="}


class TypeChecker:
    """Builds the nodes of one condition ``text``; errors point into it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, message: str, pos: int) -> RuleSyntaxError:
        return RuleSyntaxError(message, self.text, pos)

    def build_call(self, name: str, pos: int, args: list[Node], by: tuple[str, ...] | None) -> Node:
        depth = 1 + max((a.depth for a in args), default=0)
        if name in QUANTILE_SHORTHANDS or name == "quantile":
            want = 1 if name in QUANTILE_SHORTHANDS else 2
            self.arity(name, pos, args, want)
            if name == "quantile":
                if not isinstance(args[0], Number):
                    raise self.error("quantile(q, ...) needs a number q", args[0].pos)
                q = args[0].value
            else:
                q = QUANTILE_SHORTHANDS[name]
            hist = args[-1]
            if hist.vtype is not VType.HIST_RANGE:
                raise self.error(f"{name}() needs a histogram window such as "
                                 "botmon.trade.duration[5m]", hist.pos)
            return Call(pos, VType.VECTOR, by == (), depth, "histogram_quantile",
                        (hist,), by, q)
        if by is not None and name not in AGGREGATIONS:
            raise self.error(f"'by' does not apply to {name}()", pos)
        if name in RATE_FUNCTIONS:
            self.arity(name, pos, args, 1)
            self.want(args[0], VType.RANGE, f"{name}() needs a window such as x[5m]")
            return Call(pos, VType.VECTOR, False, depth, name, tuple(args))
        if name == "abs":
            self.arity(name, pos, args, 1)
            self.value_operand(args[0])
            return Call(pos, args[0].vtype, args[0].labelless, depth, "abs", tuple(args))
        self.arity(name, pos, args, 1)
        arg = args[0]
        if name in OVER_TIME:
            if by is not None:
                raise self.error(f"'by' does not apply to {name}()", pos)
            self.want(arg, VType.RANGE, f"{name}() needs a window such as x[5m]")
            return Call(pos, VType.VECTOR, False, depth, name, (arg,))
        if arg.vtype is VType.RANGE:
            if by is not None:
                raise self.error(f"'by' does not apply to {name}() over a window", pos)
            return Call(pos, VType.VECTOR, False, depth, f"{name}_over_time", (arg,))
        self.want(arg, VType.VECTOR, f"{name}() needs series or a window")
        return Call(pos, VType.VECTOR, not by, depth, name, (arg,), by if by is not None else ())

    def arity(self, name: str, pos: int, args: list[Node], n: int) -> None:
        if len(args) != n:
            raise self.error(f"{name}() takes {n} argument{'s' if n > 1 else ''}, "
                             f"got {len(args)}", pos)

    def want(self, node: Node, vtype: VType, message: str) -> None:
        if node.vtype is not vtype:
            raise self.error(message, node.pos)

    def value_operand(self, node: Node) -> None:
        if node.vtype in (VType.RANGE, VType.HIST_RANGE):
            raise self.error(
                "a window needs a function such as rate(...), avg(...) or p95(...)", node.pos
            )

    def binary(self, op: str, left: Node, right: Node, pos: int,
               matching: Matching | None = None, as_bool: bool = False) -> Node:
        self.value_operand(left)
        self.value_operand(right)
        depth = 1 + max(left.depth, right.depth)
        if depth > MAX_DEPTH:
            raise self.error(f"expression deeper than {MAX_DEPTH} operations", pos)
        both_scalar = left.vtype is VType.SCALAR and right.vtype is VType.SCALAR
        if matching is not None and (left.vtype is VType.SCALAR or right.vtype is VType.SCALAR):
            if matching.labels:
                raise self.error("vector matching (on/ignoring) needs series on both sides",
                                 pos)
            # as Prometheus: an empty `on()`/`ignoring()` (and its group_left/right)
            # beside a number matches nothing and is dropped
            matching = None
        if op in COMPARISONS:
            vtype = VType.SCALAR if both_scalar and as_bool else VType.VECTOR
        else:
            vtype = VType.SCALAR if both_scalar else VType.VECTOR
        labelless = left.labelless and right.labelless
        if matching is not None:
            labelless = (matching.on and not matching.labels
                         and matching.card == "one-to-one")
        return Binary(pos, vtype, labelless, depth, op, left, right, as_bool, matching)

    def set_op(self, op: str, left: Node, right: Node, pos: int,
               matching: Matching | None = None) -> Node:
        node = self.binary(op, left, right, pos)
        labelless = left.labelless if op != "or" else left.labelless and right.labelless
        return Binary(pos, VType.VECTOR, labelless, node.depth, op, left, right, False,
                      matching)

    def negate(self, node: Node, pos: int) -> Node:
        """``not`` inverts a comparison and is pushed through and/or (De Morgan)."""
        if isinstance(node, Binary) and not node.bool_:
            if node.op in _NEGATED and node.op in COMPARISONS:
                return dataclasses.replace(node, op=_NEGATED[node.op])
            if node.op in ("and", "or") and node.matching is None:
                flipped = "or" if node.op == "and" else "and"
                return self.set_op(flipped, self.negate(node.left, pos),
                                   self.negate(node.right, pos), node.pos)
        if isinstance(node, Derived):
            return self.negate(node.expansion, pos)
        raise self.error("'not' applies to a comparison such as not (cpu > 90)", pos)
