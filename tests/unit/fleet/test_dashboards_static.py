"""Static checks of the Grafana dashboards: shape, data source variable, metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from otel_botmon import conventions as conv
from tests.integration.fleet import grafana

FILES = grafana.dashboard_files()
EXPECTED = {"botmon-trading.json", "botmon-exchange.json", "botmon-host-health.json",
            "botmon-alerts.json"}
# Series Prometheus itself provides (scrape health, alert state, resource attributes).
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "target_info"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "by",
    "without", "on", "ignoring", "group_left", "group_right", "bool", "or", "and", "unless",
    "vector", "le", "abs", "clamp_min", "topk", "offset",
}
_UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes", "bp": "_bp"}


def _prom_names() -> set[str]:
    """The names opentelemetry-exporter-prometheus gives the conventions' metrics
    (verified against a live scrape by tests/integration/fleet)."""
    names = set()
    for spec in conv.ALL_METRICS:
        base = spec.name.replace(".", "_") + _UNIT_SUFFIX.get(spec.unit, "")
        if spec.kind is conv.InstrumentKind.COUNTER:
            names.add(base + "_total")
        elif spec.kind is conv.InstrumentKind.HISTOGRAM:
            names |= {base + "_bucket", base + "_sum", base + "_count"}
        else:
            names.add(base)
    return names


def _identifiers(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", without_groupings)) - PROMQL_WORDS


def test_the_four_dashboards_exist() -> None:
    assert {path.name for path in FILES} == EXPECTED


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_uses_a_prometheus_datasource_variable(path: Path) -> None:
    board = json.loads(path.read_text())
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"]["uid"] == "${datasource}", var["name"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_panels_are_unique_and_queried(path: Path) -> None:
    board = json.loads(path.read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert len({p["title"] for p in panels}) == len(panels)
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in panels)


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(path.read_text())["uid"] for path in FILES]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_metric_name_follows_the_conventions(path: Path) -> None:
    known = _prom_names() | PROMETHEUS_SERIES
    unknown = {
        (query.panel, name)
        for query in grafana.panel_queries(path)
        for name in _identifiers(query.expr)
        if name not in known
    }
    assert not unknown, sorted(unknown)


def test_the_checker_rejects_a_name_outside_the_conventions() -> None:
    assert _identifiers('sum(rate(botmon_trades_count{job=~"$job"}[5m]))') - _prom_names() == {
        "botmon_trades_count"
    }


def test_trading_dashboard_covers_the_issue_panels() -> None:
    queries = grafana.panel_queries(grafana.DASHBOARDS_DIR / "botmon-trading.json")
    titles = {q.panel for q in queries}
    exprs = " ".join(q.expr for q in queries)
    assert {"Trades per second", "Trade outcomes", "Realized P&L", "Win rate"} <= titles
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(botmon_trade_duration" in exprs
    assert "botmon_trade_slippage_bp_bucket" in exprs


def test_exchange_dashboard_shows_what_is_left_of_each_rate_limit() -> None:
    """botmon.exchange.ratelimit.remaining (HTX and BingX send nothing else) has its panel,
    by the gauge's attributes, the lowest across instances (the cautious reading)."""
    queries = grafana.panel_queries(grafana.DASHBOARDS_DIR / "botmon-exchange.json")
    remaining = [q for q in queries if "botmon_exchange_ratelimit_remaining" in q.expr]
    assert [q.panel for q in remaining] == ["Rate-limit remaining"]
    assert remaining[0].expr.startswith(
        "min by (exchange_name, ratelimit_budget, ratelimit_interval) "
        "(botmon_exchange_ratelimit_remaining{")
