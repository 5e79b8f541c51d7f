"""Restart on the same store file: the ``for`` and ``keep_firing_for`` timers follow
Prometheus' restore rules (outage tolerance, grace period); the outage never counts as
time a condition held. The evaluation mark reaches the store about once a minute, never
on the caller's thread."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertRule, AlertState
from otel_botmon.alerting.store import AlertStore

from .conftest import T0, Clock, Conditions

MIN = 60.0
HOUR = 3600.0
MakeEvaluator = Callable[..., AlertEvaluator]


def _kinds(events: list[Any]) -> list[str]:
    return [e.kind.value for e in events]


def _run_until_pending(ev: AlertEvaluator, clock: Clock, pending_s: float,
                       step: float = MIN) -> None:
    """Evaluate every ``step`` from now until the alert has been pending ``pending_s``
    (the last evaluation is at start + pending_s)."""
    end = clock.now + pending_s
    while True:
        ev.evaluate()
        if clock.now >= end:
            break
        clock.advance(step)
    assert [a.state for a in ev.active()] == [AlertState.PENDING]


def _first_fired(ev: AlertEvaluator, clock: Clock, limit_s: float, step: float) -> float | None:
    """Evaluate every ``step`` from now; when the first FIRED came (None: not within
    ``limit_s``)."""
    end = clock.now + limit_s
    while clock.now <= end:
        if "fired" in _kinds(ev.evaluate()):
            return clock.now
        clock.advance(step)
    return None


def _restart_pending(
    make: MakeEvaluator, conditions: Conditions, clock: Clock, db: Path, rule: AlertRule,
    pending_s: float, outage_s: float, step: float = 10.0, **kwargs: Any,
) -> float | None:
    """Pending for ``pending_s``, stop cleanly, stay down ``outage_s``, start a new
    evaluator on the same file: seconds from the restart to the first FIRED."""
    cond = conditions.by_text.get(rule.condition) or conditions.add(rule.condition, ">", 1)
    cond.set(5)
    store = AlertStore(db)
    ev = make(rule, store=store, **kwargs)
    _run_until_pending(ev, clock, pending_s)
    ev.close()
    store.close()
    clock.advance(outage_s)
    restart = clock.now
    store = AlertStore(db)
    try:
        again = make(rule, store=store, **kwargs)
        fired = _first_fired(again, clock, 2 * rule.for_ + HOUR, step)
        again.close()
    finally:
        store.close()
    return None if fired is None else fired - restart


@pytest.mark.parametrize(("for_s", "pending_s", "outage_s", "fires_after"), [
    # a short outage: the timer goes on where it stopped (20 - 5 = 15 min to go)
    (20 * MIN, 5 * MIN, 2 * MIN, 15 * MIN),
    # down longer than the tolerance (1 h): the timer starts anew
    (20 * MIN, 15 * MIN, 2 * HOUR, 20 * MIN),
    # 5 min to go, but no sooner than the grace period (10 min) after the restart
    (20 * MIN, 15 * MIN, 3 * MIN, 10 * MIN),
    # a `for` shorter than the grace period: the timer starts anew (as Prometheus)
    (5 * MIN, 4 * MIN, 30.0, 5 * MIN),
    # the attack: 5 min `for`, 10 h down; it fired on the first cycle
    (5 * MIN, 2 * MIN, 10 * HOUR, 5 * MIN),
])
def test_restored_pending_alert_never_counts_the_outage_as_time_held(
    make_evaluator: MakeEvaluator, conditions: Conditions, clock: Clock, tmp_path: Path,
    for_s: float, pending_s: float, outage_s: float, fires_after: float,
) -> None:
    rule = AlertRule("slow", "x > 1", for_=for_s)
    fired = _restart_pending(make_evaluator, conditions, clock, tmp_path / "a.db", rule,
                             pending_s, outage_s)
    assert fired == fires_after


def test_outage_tolerance_and_grace_period_are_settings(
    make_evaluator: MakeEvaluator, conditions: Conditions, clock: Clock, tmp_path: Path,
) -> None:
    from otel_botmon.alerting.for_state import ForStatePolicy

    rule = AlertRule("slow", "x > 1", for_=5 * MIN)
    # no grace period, a tolerance of 3 h: 2 h down, 3 min pending -> 2 min to go
    fired = _restart_pending(make_evaluator, conditions, clock, tmp_path / "a.db", rule,
                             3 * MIN, 2 * HOUR,
                             for_state=ForStatePolicy(outage_tolerance_s=3 * HOUR,
                                                      grace_period_s=0))
    assert fired == 2 * MIN
    with pytest.raises(ValueError, match="grace_period_s"):
        ForStatePolicy(grace_period_s=-1)
    with pytest.raises(ValueError, match="outage_tolerance_s"):
        ForStatePolicy(outage_tolerance_s=float("nan"))


def test_firing_alert_keeps_firing_after_a_long_outage_then_follows_the_condition(
    make_evaluator: MakeEvaluator, conditions: Conditions, clock: Clock, tmp_path: Path,
) -> None:
    db = tmp_path / "a.db"
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("slow", "x > 1", for_=20 * MIN)
    cond.set(5)
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    assert _first_fired(ev, clock, HOUR, MIN) == T0 + 20 * MIN
    (alert,) = ev.firing()
    ev.close()
    store.close()
    clock.advance(10 * HOUR)
    store = AlertStore(db)
    try:
        again = make_evaluator(rule, store=store)
        assert again.evaluate() == []  # no second FIRED, no pending again
        assert [(a.id, a.state) for a in again.active()] == [(alert.id, AlertState.FIRING)]
        cond.set(0)
        clock.advance(10)
        assert _kinds(again.evaluate()) == ["resolved"]
        again.close()
    finally:
        store.close()


@pytest.mark.parametrize(("outage_s", "resolves_after"), [
    (30 * MIN, 6 * MIN),   # 4 of its 10 min seen clear before the stop: 6 to go
    (2 * HOUR, 10 * MIN),  # past the tolerance: the window starts anew
])
def test_keep_firing_window_does_not_count_the_outage_as_time_clear(
    make_evaluator: MakeEvaluator, conditions: Conditions, clock: Clock, tmp_path: Path,
    outage_s: float, resolves_after: float,
) -> None:
    db = tmp_path / "a.db"
    cond = conditions.add("x > 1", ">", 1)
    rule = AlertRule("slow", "x > 1", keep_firing_for=10 * MIN)
    cond.set(5)
    store = AlertStore(db)
    ev = make_evaluator(rule, store=store)
    assert _kinds(ev.evaluate()) == ["fired"]
    cond.set(0)
    for _ in range(5):  # clear at +1 .. +5 min: the window opened at +1 min
        clock.advance(MIN)
        assert ev.evaluate() == []
    ev.close()
    store.close()
    clock.advance(outage_s)
    restart = clock.now
    store = AlertStore(db)
    try:
        again = make_evaluator(rule, store=store)
        while not (events := again.evaluate()):
            clock.advance(10)
            assert clock.now - restart <= HOUR
        assert _kinds(events) == ["resolved"]
        assert clock.now - restart == resolves_after
        again.close()
    finally:
        store.close()


def test_evaluation_mark_is_written_about_once_a_minute_off_the_callers_thread(
    make_evaluator: MakeEvaluator, conditions: Conditions, clock: Clock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cond = conditions.add("x > 1", ">", 1)
    for i in range(50):
        cond.set(5, symbol=f"S{i}")
    store = AlertStore(tmp_path / "a.db")
    writes: list[tuple[float, threading.Thread]] = []
    save = store.save_evaluation_mark

    def counted(at: float, evaluator: str = "default") -> None:
        writes.append((at, threading.current_thread()))
        save(at, evaluator)

    monkeypatch.setattr(store, "save_evaluation_mark", counted)
    ev = make_evaluator(AlertRule("slow", "x > 1", for_=HOUR), store=store)
    try:
        for _ in range(10 * 12 + 1):  # every 5 s for 10 minutes
            ev.evaluate()
            clock.advance(5)
        last = clock.now - 5
        assert store.settle_writes(10)
        # at most one mark per minute of evaluation (not one per alert, not one per
        # cycle); fewer when the writer thread lags, as a mark still queued takes the
        # newest time instead of queueing another (a loaded machine coalesces them)
        marks = [at for at, _ in writes]
        assert 1 <= len(marks) <= 12 and marks == sorted(set(marks)), [a - T0 for a in marks]
        assert threading.current_thread() not in {thread for _, thread in writes}
        # a SIGKILL now would lose at most a minute
        mark = store.last_evaluation_mark()
        assert mark is not None and last - MIN < mark <= last
    finally:
        ev.close()
        store.close()
    reopened = AlertStore(tmp_path / "a.db")
    try:
        assert reopened.last_evaluation_mark() == last  # a clean stop loses nothing
    finally:
        reopened.close()


# --- against a model of Prometheus' RestoreForState --------------------------------------


def prometheus_fires_at(*, restart: float, for_s: float, pending_s: float, outage_s: float,
                        grace_s: float, tolerance_s: float) -> float:
    """When Prometheus fires a restored alert whose condition holds from the restart on
    (evaluated continuously): its ``for`` is restored only when at least the grace period
    and the outage is within the tolerance; then what is left, but no sooner than the
    grace period."""
    if for_s < grace_s or outage_s > tolerance_s:
        return restart + for_s
    left = for_s - pending_s
    return restart if left <= 0 else restart + max(left, grace_s)


minutes = st.integers(min_value=0, max_value=180).map(lambda m: m * MIN)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(for_s=st.integers(min_value=1, max_value=120).map(lambda m: m * MIN),
       pending_frac=st.floats(min_value=0, max_value=1), outage_s=minutes,
       grace_s=st.integers(min_value=0, max_value=30).map(lambda m: m * MIN),
       tolerance_s=minutes)
def test_restart_fires_when_prometheus_would(
    conditions: Conditions, for_s: float, pending_frac: float, outage_s: float,
    grace_s: float, tolerance_s: float,
) -> None:
    from otel_botmon.alerting.for_state import ForStatePolicy

    pending_s = (int(pending_frac * (for_s / MIN - 1))) * MIN  # still pending at the stop
    clock = Clock()
    policy = ForStatePolicy(outage_tolerance_s=tolerance_s, grace_period_s=grace_s)

    def make(*rules: AlertRule, **kwargs: Any) -> AlertEvaluator:
        return AlertEvaluator(rules, None, clock=clock, compiler=conditions,
                              publish_telemetry=False, **kwargs)

    with tempfile.TemporaryDirectory() as where:
        fired = _restart_pending(make, conditions, clock, Path(where) / "a.db",
                                 AlertRule("slow", "x > 1", for_=for_s), pending_s,
                                 outage_s, step=MIN, for_state=policy)
    expected = prometheus_fires_at(restart=0.0, for_s=for_s, pending_s=pending_s,
                                   outage_s=outage_s, grace_s=grace_s,
                                   tolerance_s=tolerance_s)
    assert fired == expected
