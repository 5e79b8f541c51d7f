"""The column store under :class:`~otel_botmon.query._history.MetricHistory`: one
:class:`Family` per metric, its rows, per-column state and the helpers both the writer
(``_history``) and the reader (``_history_reads``) use.

Storage is by column: a metric has one time axis (a row per collection) and a column per
series, so one collection is one row, appended at C speed when the SDK hands the same
streams in the same order as last time (it does, cycle after cycle). For every series
the history tracks since which row it has a real value in every row with no counter
reset or NaN in between (its *clean run*), and since which row it has a real value in
every row whatever the values (its *span*). Queries over windows inside the clean runs
(rates of counters) or spans (instant values, gauges) of all selected series are
computed from two rows at once; any other series is read point by point, with the same
result. Each series still has points of its own (written at any time, in any order of
series, rewritten within the time slack); a point within the time slack (1 ns) of a
stored collection time is stored at that time.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import chain, compress, repeat
from operator import ge, is_, itemgetter, lt, not_
from typing import Any, Final, NamedTuple

from otel_botmon.query._types import (
    BOUNDS,
    COUNTS,
    SUM,
    TIME_SLACK,
    TOTAL,
    HistogramPoint,
    Labels,
    MetricKind,
    Value,
    histogram_decreased,
)

__all__ = [
    "NO_EDGES",
    "NO_RUN",
    "STALE",
    "Edges",
    "Family",
    "HistogramRow",
    "Selection",
    "break_run",
    "compact",
    "copy_entry",
    "entry_at",
    "histogram_irregular",
    "histograms_regular",
    "irregular",
    "irregular_columns",
    "picker",
    "recompute",
    "row_index",
    "scalar_decreased",
    "writable_last",
    "writable_row",
]

_EPS: Final = TIME_SLACK
NO_RUN: Final = sys.maxsize  # a column without a clean run up to the newest row


class HistogramRow(Sequence[HistogramPoint]):
    """The row of a whole collect of one histogram instrument, stored end to end: every
    point's cumulative bucket counts in one array of doubles, the sums and the totals in
    two more, one bounds tuple for all (8 bytes a value, no object per point). Reading
    an entry makes its point (its counts copied). Never changed once made: a write into
    the row turns it into a list first (``writable_row``)."""

    __slots__ = ("bounds", "counts", "sums", "totals", "width")

    def __init__(self, bounds: tuple[float, ...], counts: array[float], sums: array[float],
                 totals: array[float]) -> None:
        self.bounds = bounds
        self.width = len(bounds)
        self.counts = counts  # len(sums) * width doubles
        self.sums = sums
        self.totals = totals

    def __len__(self) -> int:
        return len(self.sums)

    def __getitem__(self, c: Any) -> Any:
        if isinstance(c, slice):
            return [self[k] for k in range(*c.indices(len(self.sums)))]
        c = range(len(self.sums))[c]  # negative indexes, and IndexError past the end
        w = self.width
        return (self.bounds, self.counts[c * w:c * w + w], self.sums[c], self.totals[c])

    def __iter__(self) -> Iterator[HistogramPoint]:
        w = self.width
        return zip(repeat(self.bounds),  # (as long as the rest: one entry per column)
                   [self.counts[k:k + w] for k in range(0, len(self.counts), w)],
                   self.sums, self.totals)

    def follows(self, before: HistogramRow) -> bool:
        """No point is a reset or NaN after the same column of ``before`` (see
        :func:`histogram_irregular`), for rows of the same layout: C-level passes over
        the arrays."""
        return (self.bounds is before.bounds and len(self.counts) == len(before.counts)
                and False not in map(ge, self.totals, before.totals)
                and False not in map(ge, self.sums, before.sums)
                and True not in map(lt, self.counts, before.counts))


class _StaleMarker:
    """The entry of a series that stopped being reported (shown as ``None`` outside)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = _StaleMarker()
# A row entry is one of: None (no point for this series at this time), STALE, a float
# (scalar metrics) or a HistogramPoint.

_SUM_OF = itemgetter(SUM)
_TOTAL_OF = itemgetter(TOTAL)
_BOUNDS_OF = itemgetter(BOUNDS)
_COUNTS_OF = itemgetter(COUNTS)


class Family:
    """One metric: a time axis, a row of entries per time, a column per series."""

    __slots__ = (
        "base", "broken", "delta_totals", "dirty", "fresh", "from_sdk", "index", "kind",
        "labels", "last", "last_t", "layout", "rows", "run", "selections", "span",
        "streams", "times", "tombstones", "version",
    )

    def __init__(self, kind: MetricKind) -> None:
        self.kind = kind
        self.from_sdk = False
        self.times: list[float] = []
        # rows[r][c]; a row is as wide as the columns were when it was written: a list,
        # or for a whole collect of a scalar metric a compact array of doubles
        self.rows: list[Any] = []
        self.base = 0  # serial number of rows[0] (rows dropped from the front add to it)
        self.labels: list[Labels | None] = []  # per column; None: removed (see compact)
        self.index: dict[Labels, int] = {}
        # per column: the newest real value (None: stale or none); a list, or the array
        # row of the last whole-row collect
        self.last: Any = []
        self.last_t: list[float] = []  # per column: time of its newest entry
        # per column: serial of the first row of its clean run (real values in every row
        # from there to the newest, no decrease/NaN between them), or NO_RUN
        self.run: list[int] = []
        # per column: serial of the first row of its span (a real value in every row from
        # there to the newest, whatever the values), or NO_RUN; span <= run
        self.span: list[int] = []
        self.broken: set[int] = set()  # columns whose span (and run) is NO_RUN
        self.dirty: set[int] = set()  # columns whose run must be recomputed from the rows
        self.fresh = -1  # serial of the row the current write batch appended
        self.tombstones = 0
        self.version = 0  # changes when columns are added or removed (selection caches)
        self.selections: dict[Hashable, Selection] = {}
        # running totals for delta-temporality input, so the history is always cumulative
        self.delta_totals: dict[Labels, Any] = {}
        # id(SDK attributes object) -> (that object, its column): the attribute dicts of
        # cumulative SDK streams are the same objects every collect, so each is converted
        # to labels once (the object is kept referenced, so its id stays unique)
        self.streams: dict[int, tuple[Any, int]] = {}
        # the attribute objects of the last collect when they were exactly the columns in
        # order: the next collect with the same ones is appended as a whole row
        self.layout: list[Any] | None = None

    def live_columns(self) -> Iterable[int]:
        return (c for c, labels in enumerate(self.labels) if labels is not None)


class Selection(NamedTuple):
    """The series of one metric a selector matches: columns and their labels."""

    family: Family
    cols: list[int]
    labels: list[Labels]
    version: int
    pick: Callable[[Sequence[Any]], Sequence[Any]] | None  # None: the whole row

    @property
    def kind(self) -> MetricKind:
        """The kind of the selected metric."""
        return self.family.kind


class Edges(NamedTuple):
    """A window over a selection: the series clean throughout it share ``n`` points from
    ``t0`` to ``t1``, with ``first`` and ``last`` values; ``others`` are the remaining
    series that have points in it, with those points (stale markers left out)."""

    n: int
    t0: float
    t1: float
    labels: Sequence[Labels]
    first: Sequence[Value]
    last: Sequence[Value]
    others: list[tuple[Labels, list[tuple[float, Value]]]]


NO_EDGES: Final = Edges(0, 0.0, 0.0, (), (), (), [])


def recompute(family: Family) -> None:
    """Spans and clean runs of the dirty columns, from the rows themselves."""
    rows = family.rows
    decreased: Callable[[Any, Any], bool] = (
        histogram_irregular if family.kind is MetricKind.HISTOGRAM else scalar_decreased
    )
    for c in family.dirty:
        r = len(rows) - 1
        current = entry_at(rows[r], c) if r >= 0 else None
        if current is None or current is STALE:
            break_run(family, c)
            continue
        run = -1 if current != current else None  # a NaN newest: no clean run
        while r > 0:
            before = entry_at(rows[r - 1], c)
            if before is None or before is STALE:
                break
            if run is None and decreased(before, current):
                run = r
            current = before
            r -= 1
        family.span[c] = family.base + r
        family.run[c] = family.base + (r if run is None else len(rows) if run < 0 else run)
        family.broken.discard(c)
    family.dirty.clear()


def copy_entry(entry: Value) -> Value:
    """A stored value as handed out: a histogram point's counts as a tuple."""
    if entry.__class__ is tuple:
        return (entry[BOUNDS], tuple(entry[COUNTS]), entry[SUM], entry[TOTAL])
    return entry


def writable_row(family: Family, r: int) -> list[Any]:
    """Row ``r`` as a list (an array row of a whole collect is converted once)."""
    row = family.rows[r]
    if row.__class__ is not list:
        row = family.rows[r] = list(row)
    return row


def writable_last(family: Family) -> list[Any]:
    """The newest values as a list (after a whole-row collect they are its array)."""
    last = family.last
    if last.__class__ is not list:
        last = family.last = list(last)
    return last


def picker(cols: list[int], width: int) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    if len(cols) == width and cols == list(range(width)):
        return None  # every column, in order: the row itself
    if len(cols) == 1:
        c = cols[0]
        return lambda row: (row[c],)
    if not cols:
        return lambda row: ()
    return itemgetter(*cols)


def entry_at(row: Sequence[Any], c: int) -> Any:
    return row[c] if c < len(row) else None


def row_index(times: list[float], t: float) -> int:
    """Index of the row at time ``t`` (which exists)."""
    return bisect_left(times, t - _EPS)


def break_run(family: Family, c: int) -> None:
    """Column ``c`` lacks a real value in the newest row: no span, no clean run."""
    family.run[c] = family.span[c] = NO_RUN
    family.broken.add(c)


def scalar_decreased(before: float, after: float) -> bool:
    return not after >= before  # or NaN on either side


def histograms_regular(last: Sequence[HistogramPoint], values: Sequence[HistogramPoint]) -> bool:
    """No point of ``values`` is a reset or NaN after ``last`` (see
    :func:`histogram_irregular`); in C-level passes when the layouts are the same
    objects, as an SDK collect hands them."""
    if values.__class__ is HistogramRow and last.__class__ is HistogramRow:
        regular = values.follows(last)
        if regular or values.bounds is last.bounds:
            return regular
    if not all(map(is_, map(_BOUNDS_OF, values), map(_BOUNDS_OF, last))):
        return (True not in map(histogram_decreased, last, values)
                and False not in map(ge, map(_SUM_OF, values), map(_SUM_OF, last)))
    return (False not in map(ge, map(_TOTAL_OF, values), map(_TOTAL_OF, last))
            and False not in map(ge, map(_SUM_OF, values), map(_SUM_OF, last))
            and True not in map(lt, chain.from_iterable(map(_COUNTS_OF, values)),
                                chain.from_iterable(map(_COUNTS_OF, last))))


def irregular_columns(last: Sequence[Value], values: Sequence[Value],
                       histogram: bool) -> Iterable[int]:
    """The columns whose new value breaks their clean run (see :func:`_irregular`);
    for scalars that all had a value, in C-level passes (gauges go down every collect)."""
    if not histogram:
        try:
            # `not value >= previous` holds for a decrease and for a NaN on either side
            return list(compress(range(len(values)), map(not_, map(ge, values, last))))
        except TypeError:  # some series had no previous value
            pass
    return [c for c, value in enumerate(values) if irregular(last[c], value)]


def irregular(previous: Value, value: Value) -> bool:
    """Whether ``value`` after ``previous`` (None: no previous value) breaks a clean
    run: a decrease (counter reset), a NaN, or a changed histogram layout."""
    if value.__class__ is tuple:
        return previous is not None and histogram_irregular(previous, value)
    return (previous is not None and not value >= previous) or value != value


def histogram_irregular(before: HistogramPoint, after: HistogramPoint) -> bool:
    """A reset of any bucket or the count, a new layout, or a sum that went down (or is
    NaN): ``rate(h.sum[w])`` reads that as a counter reset."""
    return histogram_decreased(before, after) or not after[SUM] >= before[SUM]


def compact(family: Family) -> None:
    """Renumber the columns without the removed ones (rows, per-column state)."""
    keep = [c for c, labels in enumerate(family.labels) if labels is not None]
    renumber = {old: new for new, old in enumerate(keep)}
    width = len(family.labels)
    pick = picker(keep, width)
    rows = []
    for row in family.rows:
        if len(row) < width:
            row = [*row, *[None] * (width - len(row))]
        rows.append(row if pick is None else list(pick(row)))
    family.rows = rows
    family.labels = [family.labels[c] for c in keep]
    family.last = [family.last[c] for c in keep]
    family.last_t = [family.last_t[c] for c in keep]
    family.run = [family.run[c] for c in keep]
    family.span = [family.span[c] for c in keep]
    family.broken = {renumber[c] for c in family.broken if c in renumber}
    family.dirty = {renumber[c] for c in family.dirty if c in renumber}
    family.index = {labels: c for c, labels in enumerate(family.labels)}  # type: ignore[misc]
    family.tombstones = 0
    family.version += 1
    family.streams.clear()
    family.selections.clear()
    family.layout = None
