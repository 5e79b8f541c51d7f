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

import glob
import math
import os
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from otel_botmon.alerting.model import AlertRule, AlertState
from otel_botmon.alerting.promnames import (
    PromSeries,
    prom_label,
    prom_metric,
    reverse_labels,
    reverse_names,
)
from otel_botmon.alerting.recording import RecordingRule
from otel_botmon.alerting.rules import load_rule_groups, unique_rule_names
from otel_botmon.alerting.ruletest_file import (
    STALE,
    AlertCheck,
    ExprCheck,
    RuleTestError,
    TestGroup,
    Value,
    parse_duration,
    parse_series,
    parse_values,
    read_test_file,
)
from otel_botmon.alerting.templates import Externals
from otel_botmon.alerting.yamlnodes import FileTooLargeError, read_text
from otel_botmon.query import (
    Labels,
    MetricHistory,
    MetricKind,
    RuleSyntaxError,
    compile_condition,
)
from otel_botmon.query.syntax import (
    Binary,
    Derived,
    MatchingError,
    Node,
    Selector,
    VType,
    evaluate_node,
)

__all__ = [
    "MAX_STEPS",
    "STALE",
    "RuleTestError",
    "RuleTestReport",
    "parse_duration",
    "parse_series",
    "parse_values",
    "run_rule_tests",
]

MAX_STEPS = 200_000
"""Most evaluation steps one test group may take (eval_time / evaluation_interval)."""
MAX_RULE_EVALUATIONS = 1_000_000
"""Most rule evaluations (steps times rules) one test group may take."""


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
            lines.append(f"  SUCCESS ({self.checks} checks)")
        else:
            lines.append("  FAILED:")
            lines += ["    " + f.replace("\n", "\n    ") for f in self.failures]
        return "\n".join(lines)


Observer = Callable[[str, list[tuple[dict[str, str], dict[str, str]]]], None]


def run_rule_tests(path: str | os.PathLike[str], *,
                   observe: Observer | None = None) -> RuleTestReport:
    """Run every test of the test file at ``path``.

    ``observe(alertname, alerts)`` (optional) is called at every alert check with the
    firing alerts' labels and annotations, in Prometheus form, whatever was expected.

    Raises :class:`RuleTestError` or :class:`~otel_botmon.alerting.rules.RuleFileError`
    when the file (or a rule file it names) cannot be read, with ``file:line:column``;
    failed expectations are in the report.
    """
    filename = os.fspath(path)
    try:
        source = read_text(filename)
    except FileTooLargeError as exc:
        raise RuleTestError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        error = RuleTestError(f"{filename}: cannot read: {exc}")
        error.unreadable = True
        raise error from None
    doc = read_test_file(filename, source)
    base = os.path.dirname(os.path.abspath(filename))
    groups = []
    for pattern in doc.rule_files:
        full = os.path.join(base, pattern)
        matches = sorted(glob.glob(full)) if glob.has_magic(pattern) else [full]
        for rule_file in matches:
            groups += load_rule_groups(rule_file)
    if doc.group_eval_order:
        # as promtool orders them (a recording rule reads what the groups before it wrote
        # this evaluation): by their place in the list, a group it does not name with the
        # first one (promtool's sort gives it rank 0), ties in file order
        rank = {name: i for i, name in enumerate(doc.group_eval_order)}
        groups.sort(key=lambda g: rank.get(g.name, 0))  # stable: file order kept
    rules: list[AlertRule] = [r for g in groups for r in g.rules]
    recordings: list[RecordingRule] = [r for g in groups for r in g.recordings]
    rules = unique_rule_names(rules)  # files may share alert names, as in promtool
    report = RuleTestReport(filename)
    for test in doc.tests:
        _run_test(test, rules, doc.evaluation_interval, report, observe, recordings)
    return report


def _load_series(test: TestGroup, step: float, until: float = math.inf,
                 evaluations: int = 0) -> MetricHistory:
    """The input series as points every ``step`` seconds from 0, up to ``until`` (as
    promtool: it loads the samples up to each evaluation of its loop, and the loop stops
    at the last evaluation interval at or before the latest eval_time, so a sample after
    that is in no query, not even a promql_expr_test's at a later eval_time).

    The history keeps every point of the test: the input samples, and the point that
    each of ``evaluations`` writes into recorded series, ``ALERTS`` and
    ``ALERTS_FOR_STATE`` (more than the input's when rules are evaluated more often than
    samples come)."""
    names, label_names = reverse_names(), reverse_labels()
    parsed = []
    longest = 0
    kept = math.floor(until / step + 1e-9) + 1 if math.isfinite(until) else None
    for item in test.series:
        target = names.get(item.name)
        own = target is not None
        if target is None:  # a metric of the user's own: read under its own name
            target = PromSeries(item.name, MetricKind.GAUGE, None)
        values = item.values[:kept]
        longest = max(longest, len(values))
        parsed.append((target, own, dict(item.labels), values))
    history = MetricHistory(max_age_s=1e12,
                            max_points_per_series=max(longest, evaluations, 2) + 1)
    # histogram series arrive as separate _bucket/_sum/_count series: gather them into
    # whole points per (metric, labels) and time step
    histograms: dict[tuple[str, Labels], dict[Any, list[Value]]] = {}
    for target, own, prom_labels, values in parsed:
        # a bucket's bound is part of the histogram point, and botmon's attributes take
        # their own names back (error_type is error.type); a user's metric keeps every
        # label as written (its `le` too: a series of its own per bound, as in Prometheus)
        histogram = target.kind is MetricKind.HISTOGRAM
        le_text = prom_labels.pop("le", None) if histogram else None
        labels = Labels({label_names.get(k, k): v for k, v in prom_labels.items()}) if own \
            else Labels(prom_labels)
        if histogram:
            part = ((_le(le_text), le_text) if target.component == "bucket"
                    else target.component)
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
    # buckets by bound; `le="1"` and `le="1.0"` are two series of one bound, as in
    # Prometheus (histogram_quantile adds them up)
    les = sorted((p for p in parts if isinstance(p, tuple)), key=lambda p: p[0])
    # a histogram given without its _count or _sum series has no such series
    for component in ("count", "sum"):
        if component not in parts:
            history.absent_components.add((metric, component, labels))
    for k in range(steps):
        present = {p: v[k] for p, v in parts.items() if k < len(v) and v[k] is not None}
        if not present:
            continue
        if all(v == STALE for v in present.values()):
            history.mark_stale(metric, labels, k * step)
            continue
        keys = [le for le in les if isinstance(present.get(le), float)]
        bounds = [le[0] for le in keys]
        counts = [float(present[le]) for le in keys]  # type: ignore[arg-type]
        total = present.get("count")
        total_f = float(total) if isinstance(total, float) else (counts[-1] if counts else 0.0)
        sum_ = present.get("sum")
        history.add_histogram_point(
            metric, labels, bounds, counts, float(sum_) if isinstance(sum_, float) else 0.0,
            total_f, k * step, cumulative=True,
        )


def _le(text: str | None) -> float:
    """The bound of an ``le`` label, read as Prometheus reads it (Go's ParseFloat: no
    spaces around it, no ``_`` between digits); a label it cannot read, or NaN, is
    refused (Prometheus would leave such a bucket out, or place a NaN bound by the
    order its series come in)."""
    if text is None:
        raise RuleTestError("a _bucket series needs an 'le' label")
    try:
        if text != text.strip() or "_" in text:
            raise ValueError(text)
        bound = float(text)
    except ValueError:
        raise RuleTestError(f"invalid le label {text!r}") from None
    if math.isnan(bound):
        raise RuleTestError(f"le label {text!r} is not supported: a bucket bound must be "
                            "a number or +Inf")
    return bound


ALERTS_METRIC = "ALERTS"
"""The series Prometheus writes for every pending and firing alert (promql_expr_test
reads it, e.g. ``count(ALERTS) by (alertname, alertstate)``)."""
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
"""The series Prometheus writes next to ``ALERTS`` (to restore ``for`` timers after a
restart): the alert's labels, its value the time the alert became active (Unix
seconds; test time starts at 0)."""


def _run_test(
    test: TestGroup, rules: list[AlertRule], interval: float, report: RuleTestReport,
    observe: Observer | None = None, recordings: list[RecordingRule] | None = None,
) -> None:
    from otel_botmon.alerting.evaluator import AlertEvaluator

    step = test.interval or interval
    where = f"tests[{test.index}]"
    checks: list[tuple[float, AlertCheck]] = [(c.eval_time, c) for c in test.alert_checks]
    # as promtool: the rules are evaluated from 0 to the last eval_time (at 0 at least,
    # so a rule that cannot be evaluated fails even a test group without checks)
    last = max([c.eval_time for c in test.alert_checks]
               + [c.eval_time for c in test.expr_checks], default=0.0)
    steps = math.floor(last / interval + 1e-9)
    history = _load_series(test, step, steps * interval, evaluations=steps + 1)
    per_step = max(1, len(rules) + len(recordings or ()))
    limit = min(MAX_STEPS, MAX_RULE_EVALUATIONS // per_step)
    if last / interval > limit:
        raise RuleTestError(
            f"{where}: eval_time {last:g}s is more than {limit} evaluation intervals "
            f"of {interval:g}s for {per_step} rules (at most {MAX_RULE_EVALUATIONS:,} "
            "rule evaluations per test group)"
        )
    clock = [0.0]
    errors: list[tuple[str, BaseException]] = []
    evaluator = AlertEvaluator(rules, history, clock=lambda: clock[0],
                               recording_rules=recordings or (), publish_telemetry=False,
                               externals=Externals(test.external_labels, test.external_url),
                               compiler=compile_condition)
    # the evaluator would only log a rule that cannot be evaluated and keep its alerts'
    # state; a rule test fails on it, as promtool
    evaluator.recorder.on_error = lambda name, exc: errors.append((name, exc))
    evaluator.on_rule_error = lambda name, exc: errors.append((name, exc))
    alerts_series: set[tuple[str, Labels]] = set()
    # As Prometheus: a rule's ALERTS series are stored as soon as it is evaluated (and
    # its ended ones marked stale), so the rules after it, in its group and the next
    # ones, read them in the same evaluation. Then the evaluation's whole set is settled.
    by_rule: dict[str, set[tuple[str, Labels]]] = {}
    written: set[tuple[str, Labels]] = set()  # this evaluation's, stored rule by rule
    ended: set[tuple[str, Labels]] = set()  # this evaluation's, marked stale rule by rule

    def after_rule(name: str, active: list[Any], now: float) -> None:
        before = by_rule.get(name, set())
        by_rule[name] = _record_alerts(history, active, now, before)
        written.update(by_rule[name])
        ended.update(before - by_rule[name])

    evaluator.after_rule = after_rule
    for k in range(steps + 1):
        now = k * interval
        clock[0] = now
        written.clear()
        ended.clear()
        evaluator.evaluate(now, dispatch=False)
        alerts_series = _record_alerts(history, evaluator.active(), now,
                                       alerts_series - ended, written)
        if errors:  # as promtool: a rule that cannot be evaluated ends the test group
            for name, exc in errors:
                report.failures.append(f"{where} rule: {name}, time: {_duration(now)}, "
                                       f"err: {exc}")
            return
        for when, check in checks:
            # promtool compares an eval_time with the evaluation at or just before it
            if now <= when + 1e-9 < now + interval:
                _compare(check, evaluator.firing(), where, report, observe)
    for expr_check in test.expr_checks:
        _check_expr(expr_check, history, where, report)


def _record_alerts(history: MetricHistory, active: list[Any], now: float,
                   before: AbstractSet[tuple[str, Labels]],
                   written: AbstractSet[tuple[str, Labels]] = frozenset(),
                   ) -> set[tuple[str, Labels]]:
    """Write Prometheus' ``ALERTS`` and ``ALERTS_FOR_STATE`` series for this evaluation:
    for every pending or firing alert, 1 with its labels plus ``alertstate``, and the
    time it became active with its labels (but not again those in ``written``: stored
    already as their rule was evaluated); a series of ``before`` that ends goes stale at
    once, as Prometheus marks it. Returns the (metric, labels) of this evaluation."""
    now_series: set[tuple[str, Labels]] = set()
    with history.batch():
        for alert in active:
            state = "firing" if alert.state is AlertState.FIRING else "pending"
            labels = Labels({**alert.labels, "alertstate": state})
            if (ALERTS_METRIC, labels) not in written:
                history.add_point(ALERTS_METRIC, labels, 1.0, now)
            now_series.add((ALERTS_METRIC, labels))
            labels = Labels(alert.labels)
            if (ALERTS_FOR_STATE_METRIC, labels) not in written:
                history.add_point(ALERTS_FOR_STATE_METRIC, labels, float(alert.started_at),
                                  now)
            now_series.add((ALERTS_FOR_STATE_METRIC, labels))
        for metric, labels in before - now_series:
            history.mark_stale(metric, labels, now)
    return now_series


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:g}m{rest:g}s" if minutes else f"{rest:g}s"


def _normalize(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((prom_label(str(k)), str(v)) for k, v in labels.items()))


def _compare(check: AlertCheck, firing: list[Any], where: str, report: RuleTestReport,
             observe: Observer | None = None) -> None:
    report.checks += 1
    name = check.alertname
    if observe is not None:
        observe(name, [(dict(_normalize(a.labels)), dict(_normalize(a.annotations)))
                       for a in firing if a.labels.get("alertname") == name])
    expected = [
        (_normalize({**labels, "alertname": name}), _normalize(annotations))
        for labels, annotations in check.expected
    ]
    got = [
        (_normalize(a.labels), _normalize(a.annotations))
        for a in firing if a.labels.get("alertname") == name
    ]
    if sorted(expected) != sorted(got):
        report.failures.append(
            f"{where} alertname: {name}, time: {check.eval_text},\n"
            f"    exp: {_show(expected)}\n    got: {_show(got)}"
        )


def _check_expr(check: ExprCheck, history: MetricHistory, where: str,
                report: RuleTestReport) -> None:
    """A ``promql_expr_test``: the expression's samples at ``eval_time`` (metric name
    included where PromQL keeps it) must be exactly the expected ones."""
    report.checks += 1
    try:
        condition = compile_condition(check.expr)
    except RuleSyntaxError as exc:
        report.failures.append(
            f"{check.locate(exc.position)}: {where} expr: {check.expr.strip()!r}, "
            f"time: {check.eval_text}, err: {exc.message}"
        )
        return
    now = check.eval_time
    try:
        value = evaluate_node(condition.tree, history, now)
    except (MatchingError, ValueError, ArithmeticError) as exc:  # as promtool: a failure
        report.failures.append(
            f"{where} expr: {check.expr.strip()!r}, time: {check.eval_text}, err: {exc}"
        )
        return
    got: list[tuple[tuple[tuple[str, str], ...], float]] = []
    if isinstance(value, float):
        got.append(((), value))
    else:
        for labels, v in value.items():
            prom = dict(_normalize(labels))
            name = _result_name(condition.tree, labels, history, now)
            if name is not None:
                prom["__name__"] = name
            got.append((tuple(sorted(prom.items())), v))
    expected = []
    for sample in check.samples:
        prom = {prom_label(k): v for k, v in sample.labels.items()}
        if sample.name is not None:
            prom["__name__"] = sample.name
        expected.append((tuple(sorted(prom.items())), sample.value))
    # float equality as promtool's reflect.DeepEqual: NaN never equals NaN
    if len(got) != len(expected) or any(
        g[0] != e[0] or g[1] != e[1] for g, e in zip(sorted(got), sorted(expected),
                                                        strict=True)
    ):
        report.failures.append(
            f"{where} expr: {check.expr.strip()!r}, time: {check.eval_text},\n"
            f"    exp: {_show_samples(expected)}\n    got: {_show_samples(got)}"
        )


def _result_name(node: Node, labels: Labels, history: MetricHistory, now: float) -> str | None:
    """The ``__name__`` PromQL keeps on a result series: a selector's own, kept through
    filtering comparisons and ``and``; dropped by functions and arithmetic."""
    # labels a comparison on the way down changed: `ignoring(b)` (one-to-one) drops b
    # from the result, `group_left(c)` copies c from the other side; an `or` below finds
    # the side a result series came from on its other labels
    altered: set[str] = set()
    while True:
        if isinstance(node, Derived):
            node = node.expansion
        elif isinstance(node, Selector):
            if node.vtype is not VType.VECTOR:
                return None
            kind = node.kind if node.component is None else MetricKind.HISTOGRAM
            return prom_metric(node.metric, kind, node.component)
        elif isinstance(node, Binary) and node.op == "or":
            left = evaluate_node(node.left, history, now)
            node = node.left if isinstance(left, dict) and _has_series(
                left, labels, altered) else node.right
        elif isinstance(node, Binary) and node.op in ("and", "unless"):
            node = node.left
        elif isinstance(node, Binary) and node.op in _KEEPS_NAME and not node.bool_:
            m = node.matching
            if m is not None and m.card == "one-to-one" and m.on:
                return None  # only the on(...) labels are kept
            if m is not None:
                altered.update(m.labels if m.card == "one-to-one" else m.include)
            if m is not None and m.card == "one-to-many":
                node = node.right
            else:
                node = node.right if node.left.vtype is VType.SCALAR else node.left
        else:
            return None


_KEEPS_NAME = frozenset({">", "<", ">=", "<=", "==", "!="})


def _has_series(series: Mapping[Labels, float], labels: Labels, altered: set[str]) -> bool:
    """Whether ``series`` holds the one ``labels`` came from, but for the ``altered``
    labels an operator above dropped or copied."""
    if not altered:
        return labels in series
    wanted = {k: v for k, v in labels.items() if k not in altered}
    return any({k: v for k, v in have.items() if k not in altered} == wanted
               for have in series)


def _show_samples(samples: list[tuple[tuple[tuple[str, str], ...], float]]) -> str:
    return "[" + ", ".join(
        "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + f"}} {value!r}"
        for labels, value in sorted(samples)
    ) + "]"


def _show(alerts: list[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]]) -> str:
    parts = []
    for labels, notes in sorted(alerts):
        text = "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
        if notes:
            text += " annotations {" + ", ".join(f'{k}="{v}"' for k, v in notes) + "}"
        parts.append(text)
    return "[" + ", ".join(parts) + "]"

