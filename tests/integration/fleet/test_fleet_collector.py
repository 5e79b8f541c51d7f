"""Three bots export OTLP to one collector (rotel); everything arrives, told apart by
each bot's resource attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.fleet.conftest import StartBot
from tests.otlp_receiver import OtlpReceiver, rotel_collector

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOTS = ("fleet-alpha", "fleet-beta", "fleet-gamma")


def _bots_with_metric(receiver: OtlpReceiver, name: str) -> set[str]:
    return {
        str(resource.get("bot.name"))
        for resource, _, metric in receiver.metrics()
        if metric.name == name
    }


def _bots_with_span(receiver: OtlpReceiver, prefix: str) -> set[str]:
    return {
        str(resource.get("bot.name"))
        for resource, _, span in receiver.spans()
        if span.name.startswith(prefix)
    }


def test_every_bot_telemetry_arrives_through_one_collector(
    start_bot: StartBot, tmp_path: Path
) -> None:
    with OtlpReceiver() as receiver, rotel_collector(receiver.endpoint, tmp_path) as rotel:
        bots = [
            start_bot(
                name, otlp_endpoint=rotel.http_endpoint, export_interval=0.3,
                round_interval=0.1, extra_env={"OTEL_BSP_SCHEDULE_DELAY": "200"},
            )
            for name in BOTS
        ]
        expected = set(BOTS)
        receiver.wait_for(lambda r: _bots_with_metric(r, "botmon.trades") == expected, 30)
        receiver.wait_for(lambda r: _bots_with_span(r, "trade ") == expected, 30)
        receiver.wait_for(
            lambda r: _bots_with_metric(r, "botmon.exchange.requests") == expected, 30
        )
        receiver.wait_for(lambda r: _bots_with_metric(r, "botmon.health.status") == expected, 30)

        # Each bot's resource is complete and its own: one service.instance.id per bot.
        resources = {
            str(resource["bot.name"]): resource for resource, _, _ in receiver.metrics()
            if resource.get("bot.name") in expected
        }
        assert {r["bot.exchange"] for r in resources.values()} == {"binance"}
        assert {r["bot.strategy"] for r in resources.values()} == {"fleet-test"}
        assert {r["service.name"] for r in resources.values()} == {"fleet-bot"}
        assert len({r["service.instance.id"] for r in resources.values()}) == 3
        assert not receiver.errors
        for bot in bots:  # while the collector still runs, so their last flush is quick
            bot.stop()
