"""Telemetry.force_flush(t) spends at most t overall, however many steps are stuck.

Every step is replaced by one that is stuck for exactly the time it is offered, on a
fake clock: the clock then shows the total the steps were offered. No wall clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_botmon import telemetry as botmon_telemetry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_force_flush_offers_its_steps_only_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    tel = botmon_telemetry.configure("flush-bot", otlp_endpoint="http://127.0.0.1:9",
                                     set_global=False)
    clock = FakeClock()
    monkeypatch.setattr(botmon_telemetry.time, "monotonic", clock.monotonic)
    offered: list[float] = []

    def stuck_ms(timeout_millis: float = 30_000, **_: Any) -> bool:
        offered.append(timeout_millis / 1000)
        clock.now += timeout_millis / 1000
        return False

    def stuck_s(timeout_s: float = 5.0) -> bool:
        offered.append(timeout_s)
        clock.now += timeout_s
        return False

    monkeypatch.setattr(tel.tracer_provider, "force_flush", stuck_ms)
    monkeypatch.setattr(tel.meter_provider, "force_flush", stuck_ms)
    for pusher in tel.pushers:
        monkeypatch.setattr(pusher, "force_flush", stuck_s)
    for handoff in tel._handoffs:
        monkeypatch.setattr(handoff, "force_flush", stuck_ms)

    assert tel.force_flush(2.0) is False
    assert len(offered) == 2 + len(tel.pushers) + len(tel._handoffs) >= 5
    assert sum(offered) <= 2.0
    assert clock.now - 1000.0 <= 2.0
