"""Crash-fuzz child: raise / ack / resolve / silence alerts until killed (or drain).

Usage: python child.py STORE URL SEED MODE  (MODE: run | drain)
Prints RAISING <title> before each create, FIRED <title> <id> after it returned,
ACKED <id>, RESOLVED <id>, SILENCED <sid> <title-label>, all flushed.
In drain mode: start, drain the dispatcher, print a JSON dump of alert states, exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time

from otel_botmon.alerting.model import AlertSeverity
from otel_botmon.monitor import MonitoringConfig, SystemMonitor
from otel_botmon.notify import NotificationConfig


def out(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


async def main(store: str, url: str, seed: int, mode: str) -> None:
    rnd = random.Random(seed)
    t0 = time.monotonic()
    monitor = SystemMonitor(MonitoringConfig(
        alert_store_path=store, default_alert_rules=False, alert_check_interval=0.05,
        notification_config=NotificationConfig(
            console=False, webhook_urls=[url], storm_threshold=100_000, group_wait=0,
            retry_initial_delay=0.05, retry_max_delay=0.3, webhook_timeout=2.0,
            outbox_retention=0.5,
            webhook_hmac_secret="HMACSECRET-should-not-be-on-disk"),
    ))
    # the per-rule rate limit (20/min) would hold back most FIREDs by design
    monitor.alert_manager.evaluator._gate.max_per_minute = 10**9
    out("CONSTRUCTED", f"{time.monotonic() - t0:.3f}")
    await monitor.start()
    manager = monitor.alert_manager
    out("READY", f"{time.monotonic() - t0:.3f}", os.getpid())
    if mode == "drain":
        disp = monitor.notification_dispatcher
        assert disp is not None
        ok = await disp.drain(60)
        alerts = manager.get_alert_history(limit=100_000)
        dump = {a.id: {"state": a.state.value, "title": a.title,
                       "acked": a.acknowledged_by if hasattr(a, "acknowledged_by") else None}
                for a in alerts}
        sil = [s.id for s in manager.get_silences()]
        out("DRAINED", int(ok))
        store = manager.store
        out("DUMP", json.dumps({"alerts": dump, "silences": sil,
                                "moved": str(store.moved_aside if store else None),
                                "fallback": store.fallback_reason if store else None}))
        await monitor.stop()
        monitor.close()
        out("CLOSED")
        return
    fired: list[str] = []
    i = 0
    while True:
        op = rnd.random()
        if op < 0.55 or not fired:
            title = f"s{seed}-a{i}"
            i += 1
            out("RAISING", title)
            aid = await manager.create_custom_alert(title, "m", AlertSeverity.CRITICAL)
            out("FIRED", title, aid)
            fired.append(aid)
        elif op < 0.72:
            aid = rnd.choice(fired)
            ok = await manager.acknowledge_alert(aid, "ops")
            out("ACKED", aid, int(ok))
        elif op < 0.9:
            aid = fired.pop(rnd.randrange(len(fired)))
            ok = await manager.resolve_alert(aid, "ops")
            out("RESOLVED", aid, int(ok))
        else:
            sid = await manager.add_silence({"alertname": f"never-{i}"}, duration_s=3600)
            out("SILENCED", sid)
        if rnd.random() < 0.1:
            await asyncio.sleep(rnd.uniform(0, 0.05))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
