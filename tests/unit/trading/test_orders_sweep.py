"""The expiry sweep and the memory of finished ids against a one-order-at-a-time model.

The book expires and remembers orders in batches; the model below is the plain reading of
the rules (oldest first, stop at the first order not yet due, at most ``limit``; the last
``_RECENT`` finished ids remembered, an id set again keeping its place). Both see the same
random events on a fake clock and must record the same trades in the same order.
"""

from __future__ import annotations

import types
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from otel_botmon.instrument import orders

IDS = st.sampled_from("abcd")
TIMES = st.integers(min_value=0, max_value=6)
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), IDS, TIMES),
        st.tuples(st.just("fill"), IDS, TIMES),
        st.tuples(st.just("cancel"), IDS, TIMES),
        st.tuples(st.just("sweep"), st.sampled_from([None, 0, 1, 2, 3]), TIMES),
    ),
    max_size=80,
)
Record = tuple[str, str, "str | None"]


class _Model:
    """What the book must do, one order at a time (times in whole seconds)."""

    def __init__(self, max_open: int, ttl_s: int, recent: int, per_call: int) -> None:
        self.open: OrderedDict[str, int] = OrderedDict()  # oid -> opened at, oldest first
        self.recent: OrderedDict[str, bool] = OrderedDict()  # oid -> expired (late fill ok)
        self.max_open, self.ttl, self.keep, self.per_call = max_open, ttl_s, recent, per_call
        self.records: list[Record] = []

    def remember(self, oid: str, expired: bool) -> None:
        self.recent[oid] = expired
        if len(self.recent) > self.keep:
            self.recent.popitem(last=False)

    def sweep(self, now: int, limit: int | None) -> int:
        finished: list[str] = []
        while self.open and (limit is None or len(finished) < limit):
            oid, opened = next(iter(self.open.items()))
            if opened > now - self.ttl:
                break
            del self.open[oid]
            self.recent[oid] = True  # trimmed after the batch, as one step
            finished.append(oid)
        while len(self.recent) > self.keep:
            self.recent.popitem(last=False)
        self.records += [(oid, "expired", "ttl") for oid in finished]
        return len(finished)

    def unmatched(self, oid: str, outcome: str) -> None:
        if self.recent.get(oid) and outcome == "filled":
            self.recent[oid] = False
            self.records.append((oid, "filled", None))
        elif oid not in self.recent:
            self.remember(oid, False)
            self.records.append((oid, outcome, None))

    def event(self, kind: str, arg: Any, now: int) -> int | None:
        if kind == "sweep":
            return self.sweep(now, arg)
        if kind == "open":
            if arg not in self.open:
                if len(self.open) >= self.max_open:
                    evicted, _ = self.open.popitem(last=False)
                    self.remember(evicted, True)
                    self.records.append((evicted, "expired", "cap"))
                self.open[arg] = now
        else:
            outcome = "filled" if kind == "fill" else "canceled"
            if arg in self.open:
                del self.open[arg]
                self.remember(arg, False)
                self.records.append((arg, outcome, None))
            else:
                self.unmatched(arg, outcome)
        self.sweep(now, self.per_call)
        return None


@settings(max_examples=300, deadline=None)
@given(
    events=EVENTS,
    max_open=st.integers(min_value=1, max_value=6),
    ttl_s=st.integers(min_value=1, max_value=5),
    recent=st.integers(min_value=1, max_value=5),
    per_call=st.integers(min_value=0, max_value=3),
)
@example(  # an id finished, opened again and expired while still remembered
    events=[("open", "a", 0), ("fill", "a", 0), ("open", "a", 0), ("sweep", None, 1),
            ("fill", "b", 1), ("fill", "c", 1), ("fill", "d", 1)],
    max_open=6, ttl_s=1, recent=2, per_call=0,
)
def test_the_sweep_and_the_finished_ids_follow_the_one_at_a_time_rules(
    events: list[tuple[str, Any, int]], max_open: int, ttl_s: int, recent: int,
    per_call: int,
) -> None:
    clock = [0]
    fake_time = types.SimpleNamespace(
        perf_counter_ns=lambda: clock[0] * 1_000_000_000, time_ns=lambda: 0,
    )
    records: list[Record] = []
    failures: list[BaseException] = []  # anything but a reported unmatched event

    def report(component: str, exc: BaseException) -> None:
        if not isinstance(exc, orders.OrderTrackingError):
            failures.append(exc)

    def record(order: Any, outcome: str, reason: object, expired_by: str | None,
               **_: object) -> None:
        records.append((order.oid, outcome, expired_by))

    model = _Model(max_open, ttl_s, recent, per_call)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(orders, "time", fake_time)
        patch.setattr(orders, "_record", record)
        patch.setattr(orders, "_RECENT", recent)
        patch.setattr(orders, "_SWEEP_PER_CALL", per_call)
        patch.setattr(orders, "report_internal_error", report)
        patch.setattr(orders, "warn_once", lambda *a: None)
        book = orders.OpenOrders(max_open=max_open, ttl_s=ttl_s)
        for kind, arg, now in events:
            clock[0] = now
            if kind == "sweep":
                assert book.sweep(arg) == model.event(kind, arg, now)
            elif kind == "open":
                book.open(arg, "BTC/USDT", "BUY", 1.0, 100.0)
                model.event(kind, arg, now)
            elif kind == "fill":
                book.filled(arg)
                model.event(kind, arg, now)
            else:
                book.canceled(arg)
                model.event(kind, arg, now)
            assert not failures
            assert records == model.records
            assert list(book._open) == list(model.open)
            assert [(oid, order is not None) for oid, order in book._recent.items()] \
                == list(model.recent.items())
            assert all(book.is_open(oid) == (oid in model.open) for oid in "abcd")


@settings(max_examples=50, deadline=None)
@given(recent=st.integers(min_value=1, max_value=4), later=st.integers(min_value=0, max_value=12))
def test_a_clear_landing_inside_a_sweep_leaves_the_finished_ids_consistent(
    recent: int, later: int,
) -> None:
    # clear() (tests, or a fixture resetting the book while the bot's thread sweeps) may
    # land while a sweep holds the old lock: that sweep writes into the old book, and the
    # new one still remembers exactly its own finished ids, the newest ``recent`` of them
    clock = [0]
    fake_time = types.SimpleNamespace(
        perf_counter_ns=lambda: clock[0] * 1_000_000_000, time_ns=lambda: 0,
    )
    failures: list[BaseException] = []

    def report(component: str, exc: BaseException) -> None:
        if not isinstance(exc, orders.OrderTrackingError):
            failures.append(exc)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(orders, "time", fake_time)
        patch.setattr(orders, "_record", lambda *a, **k: None)
        patch.setattr(orders, "_RECENT", recent)
        patch.setattr(orders, "_SWEEP_PER_CALL", 0)
        patch.setattr(orders, "report_internal_error", report)
        patch.setattr(orders, "warn_once", lambda *a: None)
        book = orders.OpenOrders(ttl_s=1)
        book.open("a", "BTC/USDT", "BUY", 1.0, 100.0)

        class _ClearedWhileRead(orders._Order):
            __slots__ = ("_at",)

            @property  # type: ignore[override]
            def perf_ns(self) -> int:
                book.clear()  # another thread's clear(), inside the sweep
                return self._at

            @perf_ns.setter
            def perf_ns(self, value: int) -> None:
                self._at = value

        book._open["a"] = _ClearedWhileRead("a", None, None, None, None, None, None)
        clock[0] = 5
        book.sweep(None)
        finished = [f"x{i}" for i in range(later)]
        for oid in finished:  # unknown ids, each remembered in the new book
            book.filled(oid)
        assert not failures
        assert list(book._recent) == finished[max(0, later - recent):]
