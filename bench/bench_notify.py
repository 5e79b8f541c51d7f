"""Notifications stay off the evaluation path: cost of an evaluation cycle with every
channel configured (every receiver answering after 2 s) against the same cycle with no
channel, measured in the same run.

Target (issue 5): cycle with all channels <= 1.1 x cycle with none.

Each cycle adds 1,000 gauge points to the alert history (not timed), then runs 100 rules over
them with the real AlertEvaluator; about 5 series spike and 5 recover per cycle, so ~10
alert events per cycle reach the dispatcher's listener. Two evaluators read the same
history: one's listener is a dispatcher with no channel, the other's a dispatcher with
console, file, email (aiosmtpd), webhook, Slack, Telegram, Alertmanager and PagerDuty
(servers in a separate process that wait 2 s before answering). Cycles alternate
A-B / B-A. The listener only snapshots each alert; the cycle's events are committed to
the outbox in one transaction right after the cycle returns to the event loop; that
commit is reported separately (it is not part of the cycle, and no delivery waits on it).

Run: python bench/bench_notify.py [--cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller

from otel_botmon import conventions as conv
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.history import MetricHistory
from otel_botmon.alerting.model import AlertRule, AlertSeverity
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from tests.integration.notify.receivers import Receiver
from tests.services import free_port

RECEIVER_DELAY_S = 2.0
SERIES = 1000
RULES = 100
SPIKES_PER_CYCLE = 5
STEP_S = 10.0
METRIC = conv.EXCHANGE_RATELIMIT_USED.name


class SlowSmtp:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(RECEIVER_DELAY_S)
        return "250 OK"


def rules() -> list[AlertRule]:
    return [
        AlertRule(name=f"ratelimit_ex{i}", severity=AlertSeverity.CRITICAL, cooldown_minutes=0,
                  condition=f'{METRIC}{{exchange.name="ex{i}"}} > 900')
        for i in range(RULES)
    ]


def labels(n: int) -> dict[str, str]:
    return {conv.EXCHANGE_NAME: f"ex{n % RULES}", conv.RATELIMIT_INTERVAL: f"i{n // RULES}"}


def serve() -> None:
    """Receiver process: the slow servers, out of the measured process (in production
    they are other machines). Prints their ports as JSON, then serves until stdin closes."""
    receivers = {kind: Receiver(kind, delay=RECEIVER_DELAY_S).start()
                 for kind in ("slack", "telegram", "pagerduty", "webhook")}
    receivers["alertmanager"] = Receiver("webhook", delay=RECEIVER_DELAY_S).start()
    smtp = Controller(SlowSmtp(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    ports = {kind: r.port for kind, r in receivers.items()}
    ports["smtp"] = smtp.port
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    smtp.stop()


async def run(cycles: int, tmp: Path) -> dict[str, Any]:
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    ports = json.loads(server.stdout.readline())
    url = {kind: f"http://127.0.0.1:{port}" for kind, port in ports.items()}
    everything = NotificationConfig(
        smtp_server="127.0.0.1", smtp_port=ports["smtp"], smtp_use_tls=False,
        email_from="bot@example.com", email_to=["ops@example.com"],
        webhook_urls=[f"{url['webhook']}/hook"], log_file=str(tmp / "alerts.jsonl"),
        slack_webhook_url=f"{url['slack']}/services/T/B/x",
        telegram_bot_token="1:bench", telegram_chat_id="1",
        telegram_api_url=url["telegram"], alertmanager_url=url["alertmanager"],
        pagerduty_routing_key="benchroutingkey",
        pagerduty_url=f"{url['pagerduty']}/v2/enqueue",
        outbox_path=str(tmp / "outbox.db"), webhook_timeout=10.0,
    )
    nothing = NotificationConfig(console=False, outbox_path=str(tmp / "outbox-none.db"))
    full = NotificationDispatcher(everything, console_stream=io.StringIO())
    none = NotificationDispatcher(nothing)
    assert len(full.destinations) == 8 and none.destinations == []
    await full.start()
    await none.start()

    history = MetricHistory()
    with_channels = AlertEvaluator(rules(), history)
    without = AlertEvaluator(rules(), history)
    enqueue_s: list[float] = []

    def timed_listener(alert: Any, event: Any) -> None:
        start = time.perf_counter()
        full.on_alert_event(alert, event)
        enqueue_s.append(time.perf_counter() - start)

    with_channels.add_listener(timed_listener)
    commit_s: list[float] = []
    flush = full._flush_deferred

    def timed_flush() -> None:  # the group commit that runs right after each cycle
        start = time.perf_counter()
        flush()
        commit_s.append(time.perf_counter() - start)

    full._flush_deferred = timed_flush  # type: ignore[method-assign]
    without.add_listener(none.on_alert_event)
    rng = random.Random(11)
    now = 1_700_000_000.0
    timings: dict[str, list[float]] = {"none": [], "all": []}
    events = 0
    try:
        for cycle in range(cycles + 3):
            now += STEP_S
            spikes = set(rng.sample(range(SERIES), SPIKES_PER_CYCLE))
            for n in range(SERIES):
                value = 950.0 if n in spikes else rng.uniform(0, 800)
                history.add_point(METRIC, labels(n), value, now)
            order = [("none", without), ("all", with_channels)]
            if cycle % 2:
                order.reverse()
            for name, evaluator in order:
                gc.collect()
                start = time.perf_counter()
                produced = evaluator.evaluate(now)
                elapsed = time.perf_counter() - start
                if cycle >= 3:
                    timings[name].append(elapsed)
                    if name == "all":
                        events += len(produced)
            await asyncio.sleep(0.02)  # the evaluation interval: workers deliver meanwhile
        queued = full.outbox.pending_count()
        attempted = len(full.attempts())
    finally:
        await full.stop()
        await none.stop()
        full.close()
        none.close()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    return {"timings": timings, "events": events, "queued": queued, "attempted": attempted,
            "enqueue": statistics.median(enqueue_s), "commit": statistics.median(commit_s)}


def main() -> int:
    logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=150)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.cycles, Path(tmp)))
    none = result["timings"]["none"]
    full = result["timings"]["all"]
    ratio = statistics.median(full) / statistics.median(none)
    mean_ratio = statistics.fmean(full) / statistics.fmean(none)
    print(f"{args.cycles} cycles, {RULES} rules over {SERIES} series, "
          f"{result['events'] / args.cycles:.1f} alert events per cycle")
    print(f"cycle without channels: median {statistics.median(none) * 1e3:.2f} ms")
    print(f"cycle with 8 channels (receivers answer after {RECEIVER_DELAY_S:.0f} s): "
          f"median {statistics.median(full) * 1e3:.2f} ms")
    print(f"listener call (snapshot of the alert): median "
          f"{result['enqueue'] * 1e6:.0f} us per alert event; the cycle's events are then "
          f"committed in one transaction after the cycle: median "
          f"{result['commit'] * 1e3:.2f} ms")
    print(f"deliveries attempted during the run: {result['attempted']}, "
          f"still queued at the end: {result['queued']}")
    ok = ratio <= 1.1
    print(f"with channels / without = {ratio:.3f} (median), {mean_ratio:.3f} (mean)  "
          f"(target <= 1.10): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
