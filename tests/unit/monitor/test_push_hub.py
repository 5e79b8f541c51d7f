"""PushHub's shared snapshot: one build per change (or per second), not per client."""

from __future__ import annotations

import json
from typing import Any

from otel_botmon.dashboard.push import PushHub


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
    assert json.loads(hub.encode()) == {"type": "dashboard", "data": {"n": 4}}
