"""The in-memory spool keeps unwritten notifications in order, within its bound, and
hands them over exactly once when the outbox can take them again."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from otel_botmon.notify.spool import Spool

batches = st.lists(st.lists(st.integers(), min_size=1, max_size=20), min_size=1, max_size=20)


@given(batches, st.integers(1, 50), st.lists(st.booleans(), max_size=10))
def test_spool_keeps_order_and_bound_and_writes_each_once(
    kept: list[list[int]], limit: int, failures: list[bool],
) -> None:
    spool = Spool("test.db", limit=limit)
    for batch in kept:
        spool.keep(batch, sqlite3.OperationalError("database or disk is full"))
    flat = [n for batch in kept for n in batch]
    assert len(spool) == min(limit, len(flat))
    assert spool.dropped == max(0, len(flat) - limit)
    assert spool.failing == "OperationalError: database or disk is full"
    written: list[Any] = []
    outcomes = iter(failures)

    def write(items: Sequence[Any]) -> None:
        if next(outcomes, False):
            raise sqlite3.OperationalError("database is locked")
        written.extend(items)

    while not spool.flush(write):
        assert written == []  # a failed write keeps everything
    assert written == flat[-limit:]  # oldest first, the newest `limit` kept
    assert len(spool) == 0 and spool.failing is None
    assert spool.flush(write) and written == flat[-limit:]  # nothing twice
