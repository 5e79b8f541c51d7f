"""Label values and alert text a bot decoded with ``surrogateescape`` (lone surrogates)
go through every stage as U+FFFD, as Go reads a byte that is not UTF-8: evaluation,
the SQLite store and its reload, the dashboard's JSON and the notifiers."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_botmon._unicode import valid_text
from otel_botmon.alerting.evaluator import AlertEvaluator
from otel_botmon.alerting.model import AlertEventKind, AlertRule, fingerprint
from otel_botmon.alerting.store import AlertStore
from otel_botmon.dashboard.encoding import SafeJSONResponse
from otel_botmon.notify.config import Secret
from otel_botmon.notify.file import FileNotifier
from otel_botmon.notify.message import Notification
from otel_botmon.notify.webhook import WebhookNotifier
from otel_botmon.query import MetricHistory
from tests.integration.notify.receivers import Receiver

METRIC, LABEL = "bot.symbol.price", "trading.symbol"
T0 = 1_700_000_000.0
# every code point, lone surrogates included (what surrogateescape decoding produces)
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
RULE = AlertRule(
    "price", f'{METRIC}{{{LABEL}=~"(?s:.*)"}} >= 0', for_=0.0,
    annotations={"summary": "price of {{ $labels.trading.symbol }}",
                 "description": "value {{ $value }} for {{ $labels.trading.symbol }}"},
)


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ingest(history: MetricHistory, symbol: str, at: float) -> None:
    """One collect of a real SDK meter whose gauge carries ``symbol`` as an attribute."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    gauge = provider.get_meter("t").create_gauge(METRIC)
    gauge.set(1.0, {LABEL: symbol})
    history.ingest(reader.get_metrics_data(), at)
    provider.shutdown()


async def _deliver(notification: Notification, folder: Path, receiver: Receiver) -> None:
    file_result = await FileNotifier(folder / "alerts.jsonl", 1_000_000, 1).send(notification)
    assert file_result.ok, file_result
    webhook = WebhookNotifier(Secret(receiver.url + "/hook"), 0, 5.0)
    try:
        assert (await webhook.send(notification)).ok
    finally:
        await webhook.aclose()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver("webhook").start()
    yield receiver
    receiver.stop()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(symbol=ANY_TEXT, title=ANY_TEXT.filter(str.strip), message=ANY_TEXT, extra=ANY_TEXT)
def test_any_text_is_evaluated_stored_reloaded_shown_and_notified(
    receiver: Receiver, symbol: str, title: str, message: str, extra: str,
) -> None:
    seen = len(receiver.requests)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "alerts.db"
        history = MetricHistory()
        _ingest(history, symbol, T0)
        store = AlertStore(db)
        evaluator = AlertEvaluator([RULE], history, store=store, clock=lambda: T0,
                                   publish_telemetry=False)
        fired = evaluator.evaluate(T0 + 1, dispatch=False)
        assert [e.kind for e in fired] == [AlertEventKind.FIRED]
        custom, _ = evaluator.create_custom_alert(title, message, labels={"extra": extra},
                                                  now=T0 + 1, dispatch=False)
        before = {a.id: a.fingerprint for a in evaluator.firing()}
        (rule_alert,) = [a for a in evaluator.firing() if a.rule_name == "price"]
        assert rule_alert.labels[LABEL] == valid_text(symbol)
        evaluator.close()
        store.close()

        # restart: the same alerts, same fingerprints, no new FIRED
        history = MetricHistory()
        _ingest(history, symbol, T0 + 10)
        store = AlertStore(db)
        evaluator = AlertEvaluator([RULE], history, store=store, clock=lambda: T0 + 20,
                                   publish_telemetry=False)
        assert evaluator.evaluate(T0 + 20, dispatch=False) == []
        again, events = evaluator.create_custom_alert(
            title, message, labels={"extra": extra}, now=T0 + 20, dispatch=False)
        assert events == [] and again.id == custom.id
        alerts = evaluator.firing()
        assert {a.id: a.fingerprint for a in alerts} == before
        assert fingerprint("price", {LABEL: symbol, "alertname": "price",
                                     "severity": "warning"}) == rule_alert.fingerprint

        for alert in alerts:
            shown = alert.to_dict()
            for text in (shown["title"], shown["message"], *shown["labels"],
                         *shown["labels"].values(), *shown["annotations"].values()):
                assert _valid(text), text
            body = SafeJSONResponse({"alerts": [shown], "count": 1}).body
            assert json.loads(body)["alerts"][0]["id"] == alert.id
            notification = Notification.from_alert(alert, AlertEventKind.FIRED)
            asyncio.run(_deliver(notification, Path(folder), receiver))
        # a person's name and note typed into the dashboard or the CLI
        (_, (acked,)) = evaluator.acknowledge(rule_alert.id, extra or "u", note=message,
                                              now=T0 + 21, dispatch=False)
        (alert,) = [a for a in evaluator.firing() if a.id == rule_alert.id]
        assert _valid(alert.acknowledged_by or "") and _valid(str(acked.detail))
        acked_notification = Notification.from_alert(alert, acked)
        asyncio.run(_deliver(acked_notification, Path(folder), receiver))
        evaluator.close()
        store.close()
        lines = (Path(folder) / "alerts.jsonl").read_text("utf-8").split("\n")[:-1]
        assert sorted(json.loads(line)["alert_id"] for line in lines) == sorted(
            [*before, rule_alert.id])
    posted = [json.loads(r.body)["alert_id"] for r in receiver.requests[seen:]]
    assert sorted(posted) == sorted([*before, rule_alert.id])


def test_a_rule_name_that_is_not_valid_unicode_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"AlertRule 'r\\udc80': name is not valid Unicode"):
        AlertRule("r\udc80", "x > 1")
