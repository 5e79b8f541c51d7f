"""Alert state (silences, acknowledgements, resolves, escalations, pending timers) under a
real SIGKILL at a random instant: whatever a call returned is stored, nothing is notified
twice or lost, and the next start-up carries on from what was stored."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from otel_botmon.alerting.store import AlertStore
from tests.integration.notify.sigkill import kill_at_random

HERE = Path(__file__).parent


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("run", range(8))
async def test_a_silence_call_that_returned_survives_sigkill(tmp_path: Path, run: int) -> None:
    db = tmp_path / "alerts.db"
    # the random instant is drawn from the first silence on (on a loaded machine the
    # child's start-up alone can outlast the delay, and the test would check nothing)
    killed = await kill_at_random([str(HERE / "silence_child.py"), str(db)], run,
                                  max_delay=0.3, after="ADDED")
    added, expired = killed.words("ADDED"), killed.words("EXPIRED")
    assert added, killed
    stored = {str(r[0]) for r in _rows(db, "SELECT id FROM silences")}
    # the last one added may have been expiring when the kill came (its remove call had
    # not returned: either outcome is right)
    expiring = added[-1:] if len(added) % 2 == 0 else []
    lost = [s for s in added if s not in stored and s not in expired and s not in expiring]
    assert not lost, f"silences added, then lost by the kill: {lost}; {killed}"
    back = [s for s in expired if s in stored]
    assert not back, f"silences expired, back after the kill: {back}; {killed}"
    # and the next start-up has them in effect
    store = AlertStore(db)
    try:
        assert {s.id for s in store.load_silences()} == stored
    finally:
        store.close()


# --- moving a damaged store aside ------------------------------------------------------------


def _check_moved_aside(where: Path, made: list[str]) -> None:
    """After a restart on ``where/alerts.db``: it opens as an empty store, every
    damaged file's write-ahead log made before the kill is in a moved-aside file, each
    moved file is owner-only, and nothing of the move is left behind."""
    db = where / "alerts.db"
    store = AlertStore(db)  # the restart
    try:
        with store.connection() as conn:
            assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert "t" not in names, "the old file's log was replayed into the new store"
    finally:
        store.close()
    moved = sorted(where.glob("alerts.db.corrupt-*"))
    mains = [p for p in moved if not p.name.endswith(("-wal", "-shm"))]
    wals = {p.read_bytes() for p in moved if p.name.endswith("-wal")}
    lost = [n for n in made if (where / f"wal-{n}.bin").read_bytes() not in wals]
    assert not lost, f"the write-ahead logs of rounds {lost} were lost"
    # a kill after a round wrote its damaged file but before it printed MADE leaves one
    # more damaged file, moved aside by the restart above
    assert len(made) <= len(mains) <= len(made) + 1, [p.name for p in moved]
    for path in moved:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    leftovers = [p.name for p in where.iterdir()
                 if p.name.endswith((".kept", ".tmp", ".moving-aside"))]
    assert not leftovers, sorted(p.name for p in where.iterdir())


@pytest.mark.parametrize("run", range(6))
async def test_sigkill_while_moving_a_damaged_store_aside(tmp_path: Path, run: int) -> None:
    killed = await kill_at_random([str(HERE / "move_aside_child.py"), str(tmp_path)], run,
                                  max_delay=0.5)
    _check_moved_aside(tmp_path, killed.words("MADE"))


@pytest.mark.parametrize("step", range(1, 8))
async def test_sigkill_at_each_step_of_a_move_aside(tmp_path: Path, step: int) -> None:
    """A real SIGKILL just before each rename or unlink of the move (the child kills
    itself there), then a restart."""
    killed = await kill_at_random(
        [str(HERE / "move_aside_child.py"), str(tmp_path), str(step)], step,
        max_delay=0.0, after="MADE", kills_itself=True)
    if killed.words("MOVED"):
        pytest.skip(f"the move makes fewer than {step} renames and unlinks")
    _check_moved_aside(tmp_path, killed.words("MADE"))


# --- acknowledge and resolve -----------------------------------------------------------------


@pytest.mark.parametrize("run", range(6))
async def test_acknowledge_and_resolve_that_returned_survive_sigkill_once_each(
    tmp_path: Path, run: int,
) -> None:
    """Every acknowledgement and resolve that returned is stored with its event and its
    notification queued exactly once; after a restart, acknowledging or resolving again
    adds no event and queues nothing (no double notification)."""
    db = tmp_path / "alerts.db"
    killed = await kill_at_random(
        [str(HERE / "ack_resolve_child.py"), str(db), "http://127.0.0.1:9/hook"], run,
        max_delay=0.5, after="FIRED")
    fired, acked, resolved = (killed.words(w) for w in ("FIRED", "ACKED", "RESOLVED"))
    assert fired, killed

    def events(kind: str, notified: str = "") -> list[str]:
        return [str(r[0]) for r in _rows(
            db, f"SELECT alert_id FROM alert_events WHERE kind = '{kind}' {notified}")]

    def queued(kind: str) -> list[str]:
        return [str(r[0]) for r in _rows(
            db, "SELECT o.alert_id FROM notify_outbox AS o JOIN notify_messages AS m ON"
            " m.notification_id = o.notification_id"
            f" WHERE json_extract(m.payload, '$.event') = '{kind}'")]

    states = dict(_rows(db, "SELECT id, json_extract(data, '$.acknowledged_by') FROM alerts"))
    assert all(states.get(a) == "ops" for a in acked), killed
    resolved_stored = {str(r[0]) for r in _rows(
        db, "SELECT id FROM alerts WHERE state = 'resolved'")}
    assert set(resolved) <= resolved_stored, killed
    for kind, returned in (("acknowledged", acked), ("resolved", resolved)):
        stored = events(kind)
        assert set(returned) <= set(stored), (kind, killed)
        assert len(stored) == len(set(stored)), f"{kind} stored twice; {killed}"
        # (those of an alert whose FIRED the rate limit held back are not notified)
        notified = events(kind, "AND notify = 1")
        assert sorted(queued(kind)) == sorted(notified), f"{kind} not queued once; {killed}"

    from otel_botmon.monitor import MonitoringConfig, SystemMonitor

    again = SystemMonitor(MonitoringConfig(alert_store_path=str(db), default_alert_rules=False))
    try:
        before = len(_rows(db, "SELECT id FROM alert_events"))
        for alert_id in acked:
            assert await again.alert_manager.acknowledge_alert(alert_id, "someone else")
        for alert_id in resolved:
            assert await again.alert_manager.resolve_alert(alert_id, "someone else")
        assert len(_rows(db, "SELECT id FROM alert_events")) == before
    finally:
        again.close()


# --- pending timers after a kill -------------------------------------------------------------


@pytest.mark.parametrize("outage_s", [30 * 60.0, 10 * 3600.0])
@pytest.mark.parametrize("run", range(4))
async def test_no_alert_fires_earlier_than_prometheus_allows_after_sigkill(
    tmp_path: Path, run: int, outage_s: float,
) -> None:
    """A pending alert (``for`` 1 h) of a process killed at a random instant, restarted
    after an outage on the same file: it fires no sooner than Prometheus'
    RestoreForState allows (the outage never counts; a 10 h outage, past the 1 h
    tolerance, starts the timer anew), and no later than a lost evaluation mark (one
    minute) explains."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_botmon.alerting.manager import AlertManager
    from tests.integration.notify.for_state_child import RULE, STEP_S, T0

    db = tmp_path / "alerts.db"
    killed = await kill_at_random([str(HERE / "for_state_child.py"), str(db)], run,
                                  max_delay=0.5, after="READY")
    seen = [float(t) for t in killed.words("READY") + killed.words("EVAL")]
    assert seen and not killed.words("DONE"), killed
    # the kill may have come after a cycle that had no time to print
    last_eval = (seen[-1], seen[-1] + STEP_S)
    grace, tolerance, for_s = 600.0, 3600.0, RULE.for_

    restart = seen[-1] + outage_s
    now = [restart]
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader]).get_meter("t").create_up_down_counter(
        "test.level").add(5)
    manager = AlertManager(reader=reader, store=db, clock=lambda: now[0], rules=[RULE])
    try:
        fired = None
        while fired is None and now[0] <= restart + 2 * for_s:
            if [e.kind.value for e in manager.evaluate_once()] == ["fired"]:
                fired = now[0]
            else:
                now[0] += 10.0
        assert fired is not None, killed
    finally:
        manager.close()

    def prometheus(down_at: float) -> float:
        if restart - down_at > tolerance:
            return restart + for_s
        return restart + max(for_s - (down_at - T0), grace)

    earliest = prometheus(last_eval[1])
    latest = prometheus(last_eval[0] - 60.0) + 10.0  # a mark lost with the kill; one step
    assert earliest <= fired <= latest, (fired - restart, earliest - restart,
                                         latest - restart, str(killed))
