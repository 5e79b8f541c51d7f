"""The query engine's data types: labels, samples, metric kinds, histogram points and
label matchers (every other module of the engine speaks these)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter, lt, methodcaller
from typing import Any, Final

from otel_botmon.query._regex import AnchoredRegex, compile_anchored

__all__ = [
    "BOUNDS",
    "COUNTS",
    "EMPTY_LABELS",
    "SUM",
    "TIME_SLACK",
    "TOTAL",
    "HistogramPoint",
    "Labels",
    "Matcher",
    "MetricKind",
    "Sample",
    "Value",
    "Vector",
    "histogram_decreased",
]

TIME_SLACK: Final = 1e-9
"""Slack (seconds) for comparing timestamps: points this close are at the same time
(points are at most ms-precise)."""


class MetricKind(str, Enum):
    """How a metric's points are to be read."""

    GAUGE = "gauge"
    COUNTER = "counter"  # monotonic sum: rate()/increase() handle resets
    UP_DOWN_COUNTER = "up_down_counter"  # non-monotonic sum: read like a gauge
    HISTOGRAM = "histogram"


HistogramPoint = tuple[tuple[float, ...], Sequence[float], float, float]
"""One histogram observation: ``(bounds, counts, sum, total)``, counts cumulative per
ascending upper bound (the last ``inf``; an ``array('d')`` in the history, any sequence
of numbers elsewhere), ``total`` the count of observations. A plain tuple of untracked
objects, so the garbage collector stops tracking the many stored points."""
BOUNDS: Final = 0
COUNTS: Final = 1
SUM: Final = 2
TOTAL: Final = 3

Value = Any  # float for scalar series, HistogramPoint for histograms, None: stale marker


def histogram_decreased(before: HistogramPoint, after: HistogramPoint) -> bool:
    """Whether any bucket (or the count) went down, or the layout changed: a reset."""
    return (
        before[BOUNDS] is not after[BOUNDS] and before[BOUNDS] != after[BOUNDS]
    ) or not after[TOTAL] >= before[TOTAL] or True in map(lt, after[COUNTS], before[COUNTS])


class Labels(Mapping[str, str]):
    """An immutable, hashable mapping of label names to string values."""

    __slots__ = ("_hash", "_items", "_map")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        mapping = {str(k): str(v) for k, v in pairs}
        self._map = mapping
        self._items = tuple(sorted(mapping.items()))
        self._hash = hash(self._items)

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> Labels:
        """``labels`` itself when it already is a ``Labels``, else a converted copy."""
        return labels if isinstance(labels, Labels) else cls(labels)

    def __getitem__(self, key: str) -> str:
        return self._map[key]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._map) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return "{" + inner + "}"

    def without(self, names: Iterable[str]) -> Labels:
        drop = set(names)
        return Labels((k, v) for k, v in self._items if k not in drop)

    def values_of(self, names: Iterable[str]) -> tuple[str | None, ...]:
        """The values of ``names`` (None where missing): a grouping key."""
        return tuple(map(self._map.get, names))

    @staticmethod
    def values_of_many(
        many: Iterable[Labels], names: tuple[str, ...]
    ) -> Iterator[tuple[str | None, ...]]:
        """:meth:`values_of` of each labels in ``many`` (column by column, at C speed)."""
        maps = list(map(_MAP_OF, many))
        return zip(*(list(map(methodcaller("get", name), maps)) for name in names),
                   strict=True)

    @classmethod
    def from_values(cls, names: Iterable[str], values: Iterable[str | None]) -> Labels:
        """The labels ``names`` with ``values`` (see :meth:`values_of`; None: absent)."""
        return cls((k, v) for k, v in zip(names, values, strict=True) if v is not None)

    def only(self, names: Iterable[str]) -> Labels:
        keep = set(names)
        return Labels((k, v) for k, v in self._items if k in keep)


EMPTY_LABELS = Labels()
_MAP_OF = attrgetter("_map")


@dataclass(frozen=True)
class Sample:
    """One series' value: its labels (the data point's attributes) and a float."""

    labels: Labels
    value: float

    def __post_init__(self) -> None:
        # callers may pass any mapping; keep a hashable Labels so samples can be keys
        labels: Mapping[str, str] = self.labels
        if not isinstance(labels, Labels):
            object.__setattr__(self, "labels", Labels(labels))


Vector = dict[Labels, float]
"""An instant vector: series labels -> value."""


@dataclass(frozen=True, eq=False)
class Matcher:
    """``label op value`` with op ``=``, ``!=``, ``=~`` or ``!~``; regexes are RE2,
    anchored at both ends, as in Prometheus, and a missing label matches as ``""``. The
    one label matcher of the project: selectors and silences both use it. Raises
    ``RegexError`` (a ValueError) for a regex RE2 refuses."""

    label: str
    op: str
    value: str
    pattern: AnchoredRegex | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"label matcher {self.label!r}: unknown operator {self.op!r}")
        if self.pattern is None and self.op in ("=~", "!~"):
            object.__setattr__(self, "pattern", compile_anchored(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        hit = self.pattern.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit
