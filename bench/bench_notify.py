"""Process CPU per alert event with 8 slow notification channels against none.

Every figure is a ratio per round (``bench/_harness.py``: interleaved rounds, median,
IQR, mean, load average, ``--repeat N``, one ``BENCH {json}`` line per figure).

What is timed: the **whole process's CPU time** (``time.process_time()``: every thread,
so the evaluation loop, the outbox committer thread, the ``asyncio.to_thread`` workers
and the notifiers' HTTP/SMTP/file work on the event loop) from the first evaluation
cycle of a side until ``dispatcher.drain()`` says every delivery has settled, so work
the dispatcher defers is counted, not only what spills into the cycle. The evaluation
loop's history ingest is the same on both sides and is left out (its CPU on the loop
thread, ``time.thread_time()``, is subtracted); the receivers are another process and
are not counted.

Workload: each cycle adds 1,000 gauge points (one per series, in one
``MetricHistory.batch()``: one row, as the SDK collect AlertManager ingests writes it) to
the side's alert history (filled with an hour of points first, so it is in its steady
state), then runs
100 rules over them with the real AlertEvaluator; 5 series spike
and the 5 of the cycle before recover, so about 10 alert events (fired, resolved) per
cycle reach the dispatcher's listener. Cycles are ``--interval`` apart (wall time in
which the workers deliver). A round runs ``--cycles`` cycles on each side, both fed
the same points, A-B then B-A. Side "all": a dispatcher with console, file, email
(aiosmtpd), webhook, Slack, Telegram, Alertmanager and PagerDuty, default rate limits
and storm threshold, receivers in a separate process answering after ``--delay`` s.
Side "none": the same dispatcher with no channel. Ratio = CPU of "all" / CPU of
"none" for the same events.

Target (issue 16): <= 1.10 by the median of per-round ratios. The figure's detail says
what that allows per delivery (``budget_us_per_delivery``: a tenth of the evaluation's
CPU per event, over the deliveries per event) beside what a delivery costs
(``extra_us_per_delivery``), and how many requests (messages, file writes) each
destination made per round (``requests_per_round``: summaries and batches carry many
deliveries in one request, PagerDuty sends one per alert event). ``--per-channel``
adds, for information, each channel's CPU per delivery measured alone
(``notify.cpu_us_per_delivery.<channel>``).

Run: python bench/bench_notify.py [--repeat N] [--rounds N] [--quick] [--per-channel]
                                  [--cycles N] [--delay S] [--interval S]
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
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Bench
from aiosmtpd.controller import Controller

from otel_botmon import conventions as conv
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.history import MetricHistory
from otel_botmon.alerting.model import AlertRule, AlertSeverity
from otel_botmon.notify import NotificationConfig, NotificationDispatcher
from otel_botmon.notify.message import Notification
from tests.integration.notify.receivers import Receiver
from tests.services import free_port

SERIES = 1000
RULES = 100
SPIKES_PER_CYCLE = 5
STEP_S = 10.0
METRIC = conv.EXCHANGE_RATELIMIT_USED.name
DRAIN_TIMEOUT_S = 600.0
PER_CHANNEL_ALERTS = 10  # at the storm threshold, not over it: one message per alert
FILL_CYCLES = int(3600 / STEP_S) + 10  # the history keeps an hour: past it, steady state

Points = list[tuple[dict[str, str], float]]


class SlowSmtp:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return "250 OK"


def rules() -> list[AlertRule]:
    return [
        AlertRule(name=f"ratelimit_ex{i}", severity=AlertSeverity.CRITICAL, cooldown_minutes=0,
                  condition=f'{METRIC}{{exchange.name="ex{i}"}} > 900')
        for i in range(RULES)
    ]


LABELS = [{conv.EXCHANGE_NAME: f"ex{n % RULES}", conv.RATELIMIT_INTERVAL: f"i{n // RULES}"}
          for n in range(SERIES)]


def serve(delay: float) -> None:
    """Receiver process: the slow servers, out of the measured process (in production
    they are other machines). Prints their ports as JSON, then serves until stdin closes."""
    receivers = {kind: Receiver(kind, delay=delay).start()
                 for kind in ("slack", "telegram", "pagerduty", "webhook")}
    receivers["alertmanager"] = Receiver("webhook", delay=delay).start()
    smtp = Controller(SlowSmtp(delay), hostname="127.0.0.1", port=free_port())
    smtp.start()
    ports = {kind: r.port for kind, r in receivers.items()}
    ports["smtp"] = smtp.port
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    smtp.stop()


class Side:
    """One dispatcher, its own history and evaluator; :meth:`run` times a round."""

    def __init__(self, dispatcher: NotificationDispatcher) -> None:
        self.dispatcher = dispatcher
        self.history = MetricHistory()
        self.evaluator = AlertEvaluator(rules(), self.history)
        self.evaluator.add_listener(dispatcher.on_alert_event)
        self.cpu: list[float] = []  # CPU seconds per alert event, per round
        self.wall: list[float] = []
        self.events = 0

    async def run(self, cycles: list[tuple[float, Points]], interval: float) -> float:
        """Process CPU seconds (ingest excluded) for ``cycles`` and their deliveries."""
        gc.collect()
        events = 0
        ingest = 0.0
        wall = time.perf_counter()
        start = time.process_time()
        for now, points in cycles:
            began = time.thread_time()
            with self.history.batch():  # one row per cycle, as a collect writes it
                for labels, value in points:
                    self.history.add_point(METRIC, labels, value, now)
            ingest += time.thread_time() - began
            events += len(self.evaluator.evaluate(now))
            await asyncio.sleep(interval)
        if not await self.dispatcher.drain(DRAIN_TIMEOUT_S):
            raise RuntimeError("deliveries did not settle")
        cpu = time.process_time() - start - ingest
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(cpu / max(1, events))
        self.events += events
        return cpu


class Workload:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = 1_700_000_000.0

    def cycles(self, count: int, *, quiet: bool = False) -> list[tuple[float, Points]]:
        out = []
        for _ in range(count):
            self.now += STEP_S
            spikes = set() if quiet else set(self.rng.sample(range(SERIES), SPIKES_PER_CYCLE))
            points = [(LABELS[n], 950.0 if n in spikes else self.rng.uniform(0, 800))
                      for n in range(SERIES)]
            out.append((self.now, points))
        return out


CHANNELS = ("console", "file", "webhook", "slack", "telegram", "email", "alertmanager",
            "pagerduty")


def channel_settings(kind: str, ports: dict[str, int], tmp: Path) -> dict[str, Any]:
    """The NotificationConfig fields that configure one channel (``CHANNELS``)."""
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    settings: dict[str, dict[str, Any]] = {
        "console": {"console": True},
        "file": {"log_file": str(tmp / "alerts.jsonl")},
        "webhook": {"webhook_urls": [f"{url['webhook']}/hook"], "webhook_timeout": 30.0},
        "slack": {"slack_webhook_url": f"{url['slack']}/services/T/B/x"},
        "telegram": {"telegram_bot_token": "1:bench", "telegram_chat_id": "1",
                     "telegram_api_url": url["telegram"]},
        "email": {"smtp_server": "127.0.0.1", "smtp_port": ports["smtp"],
                  "smtp_use_tls": False, "email_from": "bot@example.com",
                  "email_to": ["ops@example.com"]},
        "alertmanager": {"alertmanager_url": url["alertmanager"]},
        "pagerduty": {"pagerduty_routing_key": "benchroutingkey",
                      "pagerduty_url": f"{url['pagerduty']}/v2/enqueue"},
    }
    return settings[kind]


def config(ports: dict[str, int], tmp: Path) -> NotificationConfig:
    """Every channel, default rate limits, storm threshold and grouping."""
    settings: dict[str, Any] = {"outbox_path": str(tmp / "outbox.db")}
    for kind in CHANNELS:
        settings.update(channel_settings(kind, ports, tmp))
    return NotificationConfig(**settings)


class Receivers:
    """The receiver process (``--serve``): its ports, and stopping it."""

    def __init__(self, delay: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--delay", str(delay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.ports: dict[str, int] = json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def cpu_per_event(bench: Bench, tmp: Path) -> None:
    name = "notify.cpu_per_event.8_channels/none"
    if not bench.wanted(name):
        return
    args = bench.args
    receivers = Receivers(args.delay)
    ports = receivers.ports
    loop = asyncio.new_event_loop()
    full = NotificationDispatcher(config(ports, tmp), console_stream=io.StringIO())
    none = NotificationDispatcher(NotificationConfig(console=False,
                                                     outbox_path=str(tmp / "none.db")))
    assert len(full.destinations) == 8 and none.destinations == []
    try:
        loop.run_until_complete(full.start())
        loop.run_until_complete(none.start())
        sides = {"all": Side(full), "none": Side(none)}
        workload = Workload(random.Random(11))
        flip = [False]
        warm_attempts = [0]

        def one_round() -> float:
            cycles = workload.cycles(args.cycles)
            flip[0] = not flip[0]
            order = ["all", "none"] if flip[0] else ["none", "all"]
            cpu = {}
            for key in order:
                cpu[key] = loop.run_until_complete(sides[key].run(cycles, args.interval))
            return cpu["all"] / cpu["none"]

        def warm() -> None:
            # Steady state first: histories hold their full hour (as in a bot that has
            # run for a while), so no side's evaluation grows more costly as rounds go.
            for now, points in workload.cycles(FILL_CYCLES, quiet=True):
                for side in sides.values():
                    with side.history.batch():
                        for labels, value in points:
                            side.history.add_point(METRIC, labels, value, now)
            for _ in range(2):
                one_round()
            for side in sides.values():
                side.cpu.clear()
                side.wall.clear()
                side.events = 0
            warm_attempts[0] = len(full.attempts())

        def detail() -> dict[str, Any]:
            # the timed rounds' attempts only (the warm-up's come first)
            timed = full.attempts()[warm_attempts[0]:]
            per_destination = Counter(a.destination for a in timed)
            # one settle stamps every row of a request with the same time: rows of a
            # summary, a group or a batch are one request (one write for console/file)
            sent = Counter(destination for destination, _ in
                           {(a.destination, a.at) for a in timed})
            rounds = len(sides["all"].cpu)
            events = max(1, sides["all"].events)
            none_us = statistics.median(sides["none"].cpu) * 1e6
            all_us = statistics.median(sides["all"].cpu) * 1e6
            deliveries = sum(per_destination.values()) / events  # per alert event
            return {
                "cpu_us_per_event_all": round(all_us, 1),
                "cpu_us_per_event_none": round(none_us, 1),
                "deliveries_per_event": round(deliveries, 2),
                # what one delivery may cost for the figure to meet its target
                "budget_us_per_delivery": round(0.10 * none_us / max(1.0, deliveries), 1),
                "extra_us_per_delivery": round((all_us - none_us) / max(1.0, deliveries), 1),
                "events_per_round": round(sides["all"].events / max(1, rounds), 1),
                "wall_s_per_round_all": round(statistics.median(sides["all"].wall), 2),
                "attempts_per_destination": dict(sorted(per_destination.items())),
                "requests_per_round": {destination: round(n / max(1, rounds), 1)
                                       for destination, n in sorted(sent.items())},
            }

        figure = bench.rounds(
            name, one_round, target=1.10, rounds=9, warmup=warm, detail=detail,
            workload=(
                f"whole-process CPU (process_time: all threads) from the first of "
                f"{args.cycles} evaluation cycles (100 rules, 1,000 series holding an "
                f"hour of points, ~10 alert events a cycle, {args.interval:g} s apart) "
                f"until drain() has settled "
                f"every delivery, history ingest excluded: 8 channels (receivers in "
                f"another process answering after {args.delay:g} s) / no channel, "
                "the same events")
        )
        if figure is not None:
            d = figure.detail
            print(f"  CPU per alert event (median of rounds): 8 channels "
                  f"{d['cpu_us_per_event_all']:.0f} us, none {d['cpu_us_per_event_none']:.0f}"
                  f" us; {d['events_per_round']} events a round, a round with channels "
                  f"takes {d['wall_s_per_round_all']} s wall")
            print(f"  attempts per destination: {d['attempts_per_destination']}")
            print(f"  requests (messages, writes) per round: {d['requests_per_round']}")
            print(f"  extra CPU per delivery {d['extra_us_per_delivery']:.0f} us; at the "
                  f"target it may be {d['budget_us_per_delivery']:.0f} us "
                  "(per-channel costs: --per-channel)")
    finally:
        loop.run_until_complete(full.stop())
        loop.run_until_complete(none.stop())
        full.close()
        none.close()
        loop.close()
        receivers.close()


def per_channel(bench: Bench, tmp: Path) -> None:
    """Informational (``--per-channel``): each channel's CPU per delivery, alone."""
    receivers = Receivers(0.0)
    loop = asyncio.new_event_loop()
    quiet: dict[str, Any] = {"console": False, "rate_limits": {}, "group_wait": 0.0}
    none = NotificationDispatcher(NotificationConfig(**quiet, outbox_path=str(tmp / "n.db")))
    loop.run_until_complete(none.start())
    batch = [0]

    def alerts() -> list[Notification]:
        batch[0] += 1
        return [Notification(alert_id=f"b{batch[0]}-{i}", title=f"ratelimit_ex{i} high",
                             message="used 950 of 1000", severity=AlertSeverity.CRITICAL,
                             rule_name=f"ratelimit_ex{i}", value=950.0,
                             labels={conv.EXCHANGE_NAME: f"ex{i}"})
                for i in range(PER_CHANNEL_ALERTS)]

    def cpu(dispatcher: NotificationDispatcher) -> float:
        start = time.process_time()
        dispatcher.enqueue_many(alerts())
        if not loop.run_until_complete(dispatcher.drain(DRAIN_TIMEOUT_S)):
            raise RuntimeError("deliveries did not settle")
        return time.process_time() - start

    def figure(kind: str) -> None:
        name = f"notify.cpu_us_per_delivery.{kind}"
        if not bench.wanted(name):
            return
        settings = channel_settings(kind, receivers.ports, tmp)
        one = NotificationDispatcher(
            NotificationConfig(**{**quiet, **settings}, outbox_path=str(tmp / f"{kind}.db")),
            console_stream=io.StringIO())
        loop.run_until_complete(one.start())
        flip = [False]

        def one_round() -> float:
            flip[0] = not flip[0]  # the order alternates
            extra = cpu(one) - cpu(none) if flip[0] else -cpu(none) + cpu(one)
            return extra / PER_CHANNEL_ALERTS * 1e6

        def warm() -> None:
            cpu(one)
            cpu(none)

        try:
            bench.rounds(
                name, one_round, target=None, unit=" us", rounds=9, warmup=warm,
                workload=f"process CPU per delivery, {kind} alone: {PER_CHANNEL_ALERTS} "
                         "alerts queued at once and drained, one message each (no grouping "
                         "or rate limit; receivers answer at once), minus the same alerts "
                         "with no channel")
        finally:
            loop.run_until_complete(one.stop())
            one.close()

    try:
        for kind in CHANNELS:
            figure(kind)
    finally:
        loop.run_until_complete(none.stop())
        none.close()
        loop.close()
        receivers.close()


def main() -> int:
    logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.ERROR)

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--cycles", type=int, default=3,
                            help="evaluation cycles per side and round (default 3)")
        parser.add_argument("--delay", type=float, default=0.25,
                            help="seconds every receiver waits before answering (0.25)")
        parser.add_argument("--interval", type=float, default=0.05,
                            help="wall seconds between evaluation cycles (0.05)")
        parser.add_argument("--per-channel", action="store_true",
                            help="also each channel's CPU per delivery (informational)")
        parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)

    if "--serve" in sys.argv:
        parser = argparse.ArgumentParser()
        extra(parser)
        serve(parser.parse_known_args()[0].delay)
        return 0
    bench = Bench("notify", __doc__, extra=extra)
    with tempfile.TemporaryDirectory() as tmp:
        cpu_per_event(bench, Path(tmp))
        if bench.args.per_channel:
            per_channel(bench, Path(tmp))
    return bench.finish()


if __name__ == "__main__":
    raise SystemExit(main())
