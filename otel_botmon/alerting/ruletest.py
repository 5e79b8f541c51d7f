"""Unit tests for rule files in the format of ``promtool test rules``.

```yaml
rule_files: [rules.yml]            # botmon YAML rule files, relative to this file
evaluation_interval: 1m            # default 1m
tests:
  - interval: 1m                   # spacing of input samples (default: evaluation_interval)
    input_series:
      - series: 'botmon_trade_duration_seconds_bucket{le="2",trading_symbol="BTCUSDT"}'
        values: '0+10x10'          # a+bxN, a-bxN, axN, _ (missing), _xN, stale
    alert_rule_test:
      - eval_time: 5m
        alertname: SlowTrades
        exp_alerts:
          - exp_labels: {trading_symbol: BTCUSDT, severity: warning}
            exp_annotations: {summary: "..."}
```

Input series use the *Prometheus* names of botmon metrics (``alerting.promnames``:
``botmon.trade.duration`` -> ``botmon_trade_duration_seconds_bucket``/``_sum``/``_count``,
counters end in ``_total``; labels with ``_`` for ``.``), so one test file runs both here
and, against the exported rules, in ``promtool test rules``. Expected labels may be
written either way (``trading_symbol`` or ``trading.symbol``).

The rules are evaluated by the real :class:`~otel_botmon.alerting.evaluator.AlertEvaluator`
at every evaluation step from 0 to the last ``eval_time`` over a history holding the
input series; at each ``eval_time`` the firing alerts of ``alertname`` (labels and
annotations) must be exactly the expected ones, as in promtool.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from otel_botmon.alerting.history import Labels, MetricHistory, MetricKind
from otel_botmon.alerting.model import AlertRule
from otel_botmon.alerting.promnames import prom_label, reverse_labels, reverse_names
from otel_botmon.alerting.rules import load_rule_groups

__all__ = [
    "STALE",
    "RuleTestError",
    "RuleTestReport",
    "parse_duration",
    "parse_series",
    "parse_values",
    "run_rule_tests",
]

STALE = "stale"
_NUM = r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|inf|NaN|nan)"
_EXPANDING = re.compile(rf"^(?P<a>[+-]?{_NUM})(?P<b>[+-]{_NUM})?x(?P<n>[0-9]+)$")
_PLAIN = re.compile(rf"^[+-]?{_NUM}$")
_MISSING = re.compile(r"^_(?:x(?P<n>[0-9]+))?$")
_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_SERIES_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*")

Value = float | str | None  # a number, STALE, or None for a missing sample


class RuleTestError(ValueError):
    """A test file that cannot be run (unreadable, malformed, unknown series...)."""


@dataclass
class RuleTestReport:
    """Outcome of one test file: ``ok`` when every expectation held."""

    filename: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        lines = [f"Unit Testing:  {self.filename}"]
        lines += [f"  NOTE: {n}" for n in self.notes]
        if self.ok:
            lines.append(f"  SUCCESS ({self.checks} alert checks)")
        else:
            lines.append("  FAILED:")
            lines += ["    " + f.replace("\n", "\n    ") for f in self.failures]
        return "\n".join(lines)


def parse_duration(text: object, where: str) -> float:
    """Seconds of a Prometheus duration (``5m``, ``1h30m``) or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return float(text)
    if isinstance(text, str) and _DURATION.match(text.strip()):
        return float(sum(int(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text)))
    raise RuleTestError(f"{where}: expected a duration such as 1m, got {text!r}")


def parse_values(text: str) -> list[Value]:
    """Expand promtool's series notation: ``0+10x3`` -> 0 10 20 30, ``1x2`` -> 1 1 1,
    ``_x2`` -> two missing samples, ``stale`` -> a stale marker."""
    out: list[Value] = []
    for item in str(text).split():
        missing = _MISSING.match(item)
        if missing:
            out.extend([None] * int(missing.group("n") or 1))
        elif item == STALE:
            out.append(STALE)
        elif _PLAIN.match(item):
            out.append(float(item))
        else:
            m = _EXPANDING.match(item)
            if m is None:
                raise RuleTestError(f"cannot read series value {item!r}")
            value, step = float(m.group("a")), float(m.group("b") or 0.0)
            for _ in range(int(m.group("n")) + 1):
                out.append(value)
                value += step
    return out


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """``name{label="value", ...}`` (or ``{__name__="name", ...}``) -> name and labels."""
    text = text.strip()
    m = _SERIES_NAME.match(text)
    name = m.group(0) if m else ""
    i = m.end() if m else 0
    labels: dict[str, str] = {}
    if i < len(text):
        if text[i] != "{" or not text.endswith("}"):
            raise RuleTestError(f"cannot read series {text!r}")
        body, j = text[i + 1 : -1], 0
        while j < len(body):
            lm = _LABEL.match(body, j)
            if lm is None:
                raise RuleTestError(f"cannot read labels of series {text!r}")
            value, j = _quoted(body, lm.end(), text)
            labels[lm.group(1)] = value
            while j < len(body) and body[j] in " ,":
                j += 1
    name = labels.pop("__name__", name)
    if not name:
        raise RuleTestError(f"series {text!r} has no metric name")
    return name, labels


def _quoted(body: str, i: int, whole: str) -> tuple[str, int]:
    if i >= len(body) or body[i] not in "\"'`":
        raise RuleTestError(f"expected a quoted label value in {whole!r}")
    quote, j = body[i], i + 1
    out: list[str] = []
    while j < len(body):
        ch = body[j]
        if ch == quote:
            return "".join(out), j + 1
        if ch == "\\" and quote != "`" and j + 1 < len(body):
            nxt = body[j + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            j += 2
            continue
        out.append(ch)
        j += 1
    raise RuleTestError(f"unterminated label value in {whole!r}")


def run_rule_tests(path: str | os.PathLike[str]) -> RuleTestReport:
    """Run every test of the test file at ``path``.

    Raises :class:`RuleTestError` or :class:`~otel_botmon.alerting.rules.RuleFileError`
    when the file (or a rule file it names) cannot be read; failed expectations are in
    the report.
    """
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleTestError(f"{filename}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise RuleTestError(f"{filename}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise RuleTestError(f"{filename}: expected a mapping with rule_files and tests")
    base = os.path.dirname(os.path.abspath(filename))
    rules: list[AlertRule] = []
    for rule_file in _list(doc.get("rule_files"), "rule_files"):
        rules += [r for g in load_rule_groups(os.path.join(base, str(rule_file))) for r in g.rules]
    interval = parse_duration(doc.get("evaluation_interval", "1m"), "evaluation_interval")
    if interval <= 0:
        raise RuleTestError("evaluation_interval must be > 0")
    report = RuleTestReport(filename)
    for index, test in enumerate(_list(doc.get("tests"), "tests")):
        if not isinstance(test, dict):
            raise RuleTestError(f"tests[{index}]: expected a mapping")
        _run_test(test, index, rules, interval, report)
    return report


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RuleTestError(f"{where}: expected a list")
    return value


def _load_series(test: Mapping[str, Any], index: int, step: float) -> MetricHistory:
    names, label_names = reverse_names(), reverse_labels()
    parsed = []
    longest = 0
    for j, item in enumerate(_list(test.get("input_series"), f"tests[{index}].input_series")):
        if not isinstance(item, dict) or "series" not in item:
            raise RuleTestError(f"tests[{index}].input_series[{j}]: needs 'series' and 'values'")
        prom_name, prom_labels = parse_series(str(item["series"]))
        target = names.get(prom_name)
        if target is None:
            raise RuleTestError(
                f"tests[{index}].input_series[{j}]: unknown series name {prom_name!r}; "
                "use the Prometheus name of a botmon metric (e.g. botmon_trades_total)"
            )
        values = parse_values(str(item.get("values", "")))
        longest = max(longest, len(values))
        parsed.append((target, prom_labels, values))
    history = MetricHistory(max_age_s=1e12, max_points_per_series=max(longest, 2) + 1)
    # histogram series arrive as separate _bucket/_sum/_count series: gather them into
    # whole points per (metric, labels) and time step
    histograms: dict[tuple[str, Labels], dict[Any, list[Value]]] = {}
    for target, prom_labels, values in parsed:
        le_text = prom_labels.pop("le", None)
        labels = Labels({label_names.get(k, k): v for k, v in prom_labels.items()})
        if target.kind is MetricKind.HISTOGRAM:
            part = _le(le_text) if target.component == "bucket" else target.component
            histograms.setdefault((target.metric, labels), {})[part] = values
            continue
        for k, value in enumerate(values):
            if value == STALE:
                history.mark_stale(target.metric, labels, k * step)
            elif value is not None:
                history.add_point(target.metric, labels, float(value), k * step,
                                  kind=target.kind)
    for (metric, labels), parts in histograms.items():
        _add_histogram(history, metric, labels, parts, step)
    return history


def _add_histogram(
    history: MetricHistory, metric: str, labels: Labels, parts: dict[Any, list[Value]],
    step: float,
) -> None:
    steps = max(len(v) for v in parts.values())
    les = sorted(p for p in parts if isinstance(p, float))
    for k in range(steps):
        present = {p: v[k] for p, v in parts.items() if k < len(v) and v[k] is not None}
        if not present:
            continue
        if all(v == STALE for v in present.values()):
            history.mark_stale(metric, labels, k * step)
            continue
        bounds = [le for le in les if isinstance(present.get(le), float)]
        counts = [float(present[le]) for le in bounds]  # type: ignore[arg-type]
        total = present.get("count")
        total_f = float(total) if isinstance(total, float) else (counts[-1] if counts else 0.0)
        sum_ = present.get("sum")
        history.add_histogram_point(
            metric, labels, bounds, counts, float(sum_) if isinstance(sum_, float) else 0.0,
            total_f, k * step, cumulative=True,
        )


def _le(text: str | None) -> float:
    if text is None:
        raise RuleTestError("a _bucket series needs an 'le' label")
    try:
        return math.inf if text.strip() in ("+Inf", "Inf", "inf") else float(text)
    except ValueError:
        raise RuleTestError(f"invalid le label {text!r}") from None


def _run_test(
    test: Mapping[str, Any], index: int, rules: list[AlertRule], interval: float,
    report: RuleTestReport,
) -> None:
    from otel_botmon.alerting.evaluator import AlertEvaluator

    step = parse_duration(test.get("interval", interval), f"tests[{index}].interval") or interval
    history = _load_series(test, index, step)
    if test.get("promql_expr_test"):
        report.notes.append(f"tests[{index}]: promql_expr_test is not supported; skipped")
    checks = []
    tests = _list(test.get("alert_rule_test"), f"tests[{index}].alert_rule_test")
    for j, check in enumerate(tests):
        if not isinstance(check, dict) or "alertname" not in check:
            raise RuleTestError(f"tests[{index}].alert_rule_test[{j}]: needs alertname")
        when = parse_duration(check.get("eval_time", 0), f"alert_rule_test[{j}].eval_time")
        checks.append((when, check))
    if not checks:
        return
    clock = [0.0]
    evaluator = AlertEvaluator(rules, history, clock=lambda: clock[0])
    last = max(when for when, _ in checks)
    steps = math.floor(last / interval + 1e-9)
    for k in range(steps + 1):
        now = k * interval
        clock[0] = now
        evaluator.evaluate(now, dispatch=False)
        for when, check in checks:
            # promtool compares an eval_time with the evaluation at or just before it
            if now <= when + 1e-9 < now + interval:
                _compare(check, evaluator.firing(), index, report)


def _normalize(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((prom_label(str(k)), str(v)) for k, v in labels.items()))


def _compare(
    check: Mapping[str, Any], firing: list[Any], index: int, report: RuleTestReport
) -> None:
    report.checks += 1
    name = str(check["alertname"])
    expected = []
    for exp in _list(check.get("exp_alerts"), "exp_alerts"):
        if not isinstance(exp, dict):
            raise RuleTestError(f"tests[{index}]: exp_alerts entries must be mappings")
        labels = {**(exp.get("exp_labels") or {}), "alertname": name}
        expected.append((_normalize(labels), _normalize(exp.get("exp_annotations") or {})))
    got = [
        (_normalize(a.labels), _normalize(a.annotations))
        for a in firing if a.labels.get("alertname") == name
    ]
    if sorted(expected) != sorted(got):
        report.failures.append(
            f"tests[{index}] alertname: {name}, time: {check.get('eval_time')},\n"
            f"    exp: {_show(expected)}\n    got: {_show(got)}"
        )


def _show(alerts: list[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]]) -> str:
    parts = []
    for labels, notes in sorted(alerts):
        text = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
        if notes:
            text += " annotations {" + ", ".join(f'{k}="{v}"' for k, v in notes) + "}"
        parts.append(text)
    return "[" + ", ".join(parts) + "]"

