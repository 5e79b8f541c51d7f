"""The syntax tree of the condition language: typed nodes made by ``_parser``, and the
one walk over it that the compiler and the PromQL exporter share (:func:`selectors`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from otel_botmon.query._types import Labels, Matcher, MetricKind

__all__ = [
    "COMPARISONS",
    "Binary",
    "Call",
    "Derived",
    "Matcher",
    "Matching",
    "Node",
    "Number",
    "Selector",
    "VType",
    "selectors",
]

COMPARISONS = frozenset({">", "<", ">=", "<=", "==", "!="})
"""The comparison operators of a :class:`Binary` node."""


class VType(str, Enum):
    SCALAR = "number"
    VECTOR = "series"
    RANGE = "window"  # a scalar metric with [window]
    HIST_RANGE = "histogram window"


@dataclass(frozen=True, eq=False)
class Node:
    pos: int
    vtype: VType
    labelless: bool
    depth: int


@dataclass(frozen=True, eq=False)
class Number(Node):
    value: float
    text: str


@dataclass(frozen=True, eq=False)
class Selector(Node):
    metric: str
    kind: MetricKind
    component: str | None  # "count"/"sum" of a histogram
    matchers: tuple[Matcher, ...]
    range_s: float | None

    def where(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, eq=False)
class Call(Node):
    """A function; ``func`` is its PromQL name (``rate``, ``avg_over_time``, ``sum``,
    ``histogram_quantile``...)."""

    func: str
    args: tuple[Node, ...]
    by: tuple[str, ...] | None = None
    quantile: float | None = None
    without: bool = False
    """``by`` lists the labels to drop (``sum without (a) (x)``)."""


@dataclass(frozen=True)
class Matching:
    """PromQL vector matching of a binary operation: ``on(labels)`` (``on`` true) or
    ``ignoring(labels)``, with a cardinality and the ``group_left/right(include)``
    labels copied from the "one" side."""

    on: bool
    labels: tuple[str, ...]
    card: str = "one-to-one"  # many-to-one (group_left), one-to-many (group_right),
    # many-to-many (and/or/unless)
    include: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Binary(Node):
    op: str  # arithmetic, comparison, "and", "or", "unless"
    left: Node
    right: Node
    bool_: bool = False
    """A comparison with ``bool``: 1 or 0 for every matched pair instead of filtering."""
    matching: Matching | None = None
    """Explicit vector matching; None: botmon's (equal labels; a labelless side
    applies to every series of the other)."""


@dataclass(frozen=True, eq=False)
class Derived(Node):
    name: str
    expansion: Node


def selectors(node: Node) -> Iterator[Selector]:
    """Every metric selector under ``node``, left to right, derived values expanded."""
    if isinstance(node, Selector):
        yield node
    elif isinstance(node, Derived):
        yield from selectors(node.expansion)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, Binary):
        yield from selectors(node.left)
        yield from selectors(node.right)
