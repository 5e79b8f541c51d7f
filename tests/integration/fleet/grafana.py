"""Reading the Grafana dashboards in ``dashboards/`` the way Grafana would query them.

Panel queries use Grafana's variables; :func:`substitute` replaces them with what a
"show everything" selection sends to Prometheus, so the tests can run every query
through the Prometheus HTTP API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parents[3] / "dashboards"

# Built-in interval variables and the values used in tests (short: the data is young).
BUILTINS = {"__rate_interval": "1m", "__range": "5m", "__interval": "15s"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    selector: str | None
    label: str


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def panel_queries(path: Path) -> list[PanelQuery]:
    board = load(path)
    return [
        PanelQuery(path.name, panel["title"], target["refId"], target["expr"])
        for panel in _panels(board["panels"])
        for target in panel.get("targets", [])
    ]


def variable_queries(path: Path) -> list[VariableQuery]:
    board = load(path)
    found = []
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query.strip())
        assert match, f"{path.name}: variable {var['name']} is not label_values(...): {query}"
        found.append(VariableQuery(path.name, var["name"], match["selector"], match["label"]))
    return found


def substitute(expr: str) -> str:
    """``expr`` with Grafana variables replaced: intervals by short durations, template
    variables by ``.*`` (their "All" value)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return BUILTINS.get(name, ".*")

    return _VARIABLE.sub(replace, expr)
