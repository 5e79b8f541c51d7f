"""PushHub's shared snapshot: one build per change (or per second), not per client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otel_botmon.dashboard.push import PushHub, _Client, apply_message


def test_snapshot_is_rebuilt_only_after_a_change_or_when_stale() -> None:
    builds: list[int] = []

    def build() -> dict[str, Any]:
        builds.append(1)
        return {"n": len(builds)}

    hub = PushHub(build)
    assert json.loads(hub.snapshot_json()) == {"n": 1}
    assert json.loads(hub.snapshot_json()) == {"n": 1}  # cached
    hub.mark_changed()  # no loop yet: only invalidates
    assert json.loads(hub.snapshot_json()) == {"n": 2}
    hub.max_age_s = 0.0
    assert json.loads(hub.snapshot_json()) == {"n": 3}
    message = json.loads(hub.encode())
    assert message["type"] == "dashboard" and message["data"] == {"n": 4}


class _FakeSocket:
    pass


def _view_after(
    hub: PushHub, client: Any, view: dict[str, Any] | None,
) -> tuple[dict[str, Any], int]:
    text = hub.encode_for(client)
    return apply_message(view, json.loads(text)), len(text)


def test_deltas_rebuild_the_same_view_as_snapshots() -> None:
    state: dict[str, Any] = {
        "status": {"overall_health": "healthy", "timestamp": 1.0, "uptime_seconds": 1.0,
                   "running": True, "started_at": 0.5},
        "alerts": {"active": []},
        "performance": {"current": {"cpu": 1}, "history": {"timestamp": [1.0], "cpu": [1]}},
    }
    hub = PushHub(lambda: json.loads(json.dumps(state)))
    client = _Client(_FakeSocket())  # type: ignore[arg-type]
    view, _ = _view_after(hub, client, None)
    assert view == state
    for n in range(2, 40):
        state["status"]["timestamp"] = float(n)
        state["status"]["uptime_seconds"] = n - 0.5
        if n % 3 == 0:
            state["alerts"] = {"active": [{"id": str(n)}]}
        hist = state["performance"]["history"]
        hist["timestamp"] = (hist["timestamp"] + [float(n)])[-10:]
        hist["cpu"] = (hist["cpu"] + [n])[-10:]
        state["performance"]["current"] = {"cpu": n}
        hub.mark_changed()
        view, _ = _view_after(hub, client, view)
        assert view["alerts"] == state["alerts"]
        assert view["performance"] == state["performance"]
        assert view["status"]["overall_health"] == "healthy"
    hub.mark_changed()
    _, size = _view_after(hub, client, view)  # nothing changed: a tiny delta
    assert size < 80


def test_an_idle_tab_costs_at_most_5_mb_an_hour(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import itertools

    from otel_botmon import performance
    from otel_botmon.monitor import MonitoringConfig, SystemMonitor

    clock = itertools.count(1_800_000_000, 1)  # a new sample every second
    monkeypatch.setattr(performance.time, "time", lambda: float(next(clock)))
    monitor = SystemMonitor(MonitoringConfig(default_alert_rules=False))
    try:
        for _ in range(10):
            monitor.record_trade_execution("BTCUSDT", "BUY", 0.1, 100.0, 20.0)
            monitor.performance_monitor.sample()
        hub = PushHub(lambda: monitor.get_dashboard_data(alert_limit=20, history_limit=120))
        client = _Client(_FakeSocket())  # type: ignore[arg-type]
        _view_after(hub, client, None)
        total, pushes = 0, 60
        for _ in range(pushes):  # the worst case: a new sample before every push
            monitor.performance_monitor.sample()
            hub.mark_changed()
            text = hub.encode_for(client)
            assert '"append":{"performance.history":{"timestamp":[' in text
            total += len(text)
        snapshot = len(hub.encode())
        per_hour_at_one_push_a_second = total / pushes * 3600
        assert per_hour_at_one_push_a_second <= 5_000_000, (total / pushes, snapshot)
        assert hub.encode_for(client).count('"append"') == 0  # nothing new: no points
        assert total / pushes < snapshot / 4
    finally:
        monitor.close()
