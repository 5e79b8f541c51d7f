"""Prometheus scrapes a bot; every Grafana panel query returns data for what it did."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.fleet import grafana
from tests.integration.fleet.conftest import REPO_ROOT, Prometheus, StartBot
from tests.services import LOOPBACK, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GENERATED_RULES = sorted((REPO_ROOT / "collector" / "prometheus" / "rules").glob("*.yml"))

# Rules that give the alerts dashboard something to show: one firing, one pending.
TEST_RULES = """\
groups:
  - name: fleet-test
    rules:
      - alert: BotTrading
        expr: sum by (job) (rate(botmon_trades_total[1m])) > 0
        labels: {severity: info}
      - alert: BotTradingForAnHour
        expr: sum by (job) (rate(botmon_trades_total[1m])) > 0
        for: 1h
        labels: {severity: warning}
"""


def _has_finite_value(answer: dict[str, object]) -> bool:
    data = answer.get("data")
    assert isinstance(data, dict)
    result = data["result"]
    if data["resultType"] == "scalar":
        return math.isfinite(float(result[1]))
    return any(math.isfinite(float(series["value"][1])) for series in result)


def _await(prometheus: Prometheus, expr: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = prometheus.query(expr)
        if answer.get("status") == "success" and answer["data"]["result"]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no data for {expr} within {timeout}s: {answer}\n{prometheus.process.log()}"
            )
        time.sleep(0.2)


@pytest.fixture(scope="module")
def scraped_bot(
    start_bot: StartBot,
    start_prometheus: Callable[..., Prometheus],
    tmp_path_factory: pytest.TempPathFactory,
) -> Prometheus:
    port = free_port()
    start_bot("scraped-bot", prometheus_port=port)
    test_rules = tmp_path_factory.mktemp("rules") / "test-rules.yml"
    test_rules.write_text(TEST_RULES)
    prometheus = start_prometheus([f"{LOOPBACK}:{port}"], [*GENERATED_RULES, test_rules])
    # rate() needs two scrapes; alerts need a rule evaluation after that.
    _await(prometheus, "sum(rate(botmon_trades_total[1m])) > 0")
    _await(prometheus, "sum(rate(botmon_health_check_duration_seconds_count[1m])) > 0")
    _await(prometheus, 'ALERTS{alertname="BotTrading", alertstate="firing"}')
    _await(prometheus, 'ALERTS{alertname="BotTradingForAnHour", alertstate="pending"}')
    return prometheus


def test_every_dashboard_panel_query_returns_data(scraped_bot: Prometheus) -> None:
    queries = [q for path in grafana.dashboard_files() for q in grafana.panel_queries(path)]
    assert len(queries) >= 30, "the four dashboards should have been found"
    failures = []
    for query in queries:
        expr = grafana.substitute(query.expr)
        answer = scraped_bot.query(expr)
        if answer.get("status") != "success":
            failures.append(f"{query.dashboard} / {query.panel} [{query.ref_id}]: {answer}")
        elif not _has_finite_value(answer):
            failures.append(
                f"{query.dashboard} / {query.panel} [{query.ref_id}]: no finite value for "
                f"{expr}: {answer['data']}"
            )
    assert not failures, "\n".join(failures)


def test_every_dashboard_variable_lists_the_bot(scraped_bot: Prometheus) -> None:
    failures = []
    for path in grafana.dashboard_files():
        for var in grafana.variable_queries(path):
            selector = grafana.substitute(var.selector) if var.selector else None
            if not scraped_bot.label_values(var.label, selector):
                failures.append(f"{var.dashboard}: ${var.name} = label_values({selector}, "
                                f"{var.label}) is empty")
    assert not failures, "\n".join(failures)


def test_generated_rules_load_into_prometheus(scraped_bot: Prometheus) -> None:
    if not GENERATED_RULES:
        pytest.fail("collector/prometheus/rules/ has no generated rule file")
    groups = httpx.get(f"{scraped_bot.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    files = {Path(group["file"]).name for group in groups}
    assert {path.name for path in GENERATED_RULES} <= files
    health = [rule["health"] for group in groups for rule in group["rules"]]
    assert health and all(state == "ok" for state in health), groups
