"""Export botmon alert rules as a Prometheus rule file.

Each condition's syntax tree is written as PromQL over the Prometheus names of the
metrics (``alerting.promnames``); derived values (``cpu``, ``win_rate``...) are expanded.
botmon evaluates inside one bot while Prometheus holds a fleet, so aggregations keep the
labels of one bot (:data:`BOT_LABELS`) and labelless operands are joined to the series of
their own bot (``on(job, instance, bot_name)``): each bot gets its own alert, matching
what botmon does in that bot. A rule that cannot be expressed is skipped with the
reason; a rule that translates with a difference (a recovery threshold: Prometheus has
no hysteresis) is exported with a note.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from otel_botmon.alerting.model import ALERTNAME_LABEL, AlertRule
from otel_botmon.alerting.promnames import prom_label, prom_metric
from otel_botmon.alerting.recording import RecordingRule
from otel_botmon.alerting.rules import RuleGroup
from otel_botmon.query import Condition, MetricKind, RuleSyntaxError, compile_condition
from otel_botmon.query.syntax import (
    COMPARISONS,
    Binary,
    Call,
    Derived,
    Node,
    Number,
    Selector,
    VType,
    selectors,
)

__all__ = [
    "BOT_LABELS",
    "ExportResult",
    "NotTranslatable",
    "export_prometheus",
    "format_duration",
    "to_promql",
    "translate_template",
]

SEVERITY_LABEL = "severity"

#: The labels that tell one bot process from another in Prometheus, on both paths:
#: scraping sets ``job``/``instance`` (the scrape job and target), the collector's
#: remote write sets them from ``service.name``/``service.instance.id``; ``bot_name``
#: is on every series either way (the bot's reader copies it, the collector converts
#: resource attributes) and is what collector/alertmanager.yml groups alerts by.
BOT_LABELS: tuple[str, ...] = ("job", "instance", "bot_name")


class NotTranslatable(ValueError):
    """A condition or rule that has no PromQL equivalent; the message says why."""


@dataclass
class ExportResult:
    """The rule file (``document``, dump it with :meth:`to_yaml`), which rules were
    exported, which were skipped and why, and notes on exported rules that differ."""

    document: dict[str, Any]
    exported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True, width=1000)


def export_prometheus(
    rules: Iterable[AlertRule | RuleGroup],
    default_group: str = "botmon",
    *,
    per_bot: Sequence[str] = BOT_LABELS,
) -> ExportResult:
    """Translate ``rules`` (bare rules go to group ``default_group``) to a Prometheus
    rule-file document. Never raises for a rule that does not translate: it is listed
    in ``skipped``. Aggregations keep the ``per_bot`` labels so that each bot gets its
    own alert (see :func:`to_promql`)."""
    groups: list[RuleGroup] = []
    loose = RuleGroup(default_group)
    for item in rules:
        if isinstance(item, RuleGroup):
            groups.append(item)
        else:
            loose.rules.append(item)
    if loose.rules:
        groups.insert(0, loose)
    result = ExportResult({"groups": []})
    names: set[str] = set()
    for group in groups:
        out_rules = []
        for recording in group.recordings:  # before the alerts, as botmon evaluates them
            try:
                out_rules.append(_recording(recording, per_bot))
            except (NotTranslatable, RuleSyntaxError) as exc:
                why = exc.message if isinstance(exc, RuleSyntaxError) else str(exc)
                result.skipped.append((recording.record, why))
                continue
            result.exported.append(recording.record)
        for rule in group.rules:
            try:
                out_rules.append(_rule(rule, result, per_bot))
            except NotTranslatable as exc:
                result.skipped.append((rule.name, str(exc)))
                continue
            except RuleSyntaxError as exc:  # e.g. a regex RE2 (and Prometheus) refuses
                result.skipped.append((rule.name, exc.message))
                continue
            result.exported.append(rule.name)
        if not out_rules:
            continue
        # Prometheus refuses a file with two groups of one name (several source files
        # may each have a group "trading"): the second is "trading #2", and so on
        name, count = group.name, 1
        while name in names:
            count += 1
            name = f"{group.name} #{count}"
        names.add(name)
        doc: dict[str, Any] = {"name": name}
        if group.interval_s:
            doc["interval"] = format_duration(group.interval_s)
        doc["rules"] = out_rules
        result.document["groups"].append(doc)
    return result


def _recording(rule: RecordingRule, per_bot: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"record": rule.record,
                           "expr": to_promql(compile_condition(rule.expr), per_bot)}
    if rule.labels:
        out["labels"] = {prom_label(k): v for k, v in rule.labels.items()}
    return out


def _rule(rule: AlertRule, result: ExportResult, per_bot: Sequence[str]) -> dict[str, Any]:
    if not rule.enabled:
        raise NotTranslatable("rule is disabled")
    condition = compile_condition(rule.condition)
    alertname = rule.labels.get(ALERTNAME_LABEL) or rule.name
    out: dict[str, Any] = {"alert": alertname, "expr": to_promql(condition, per_bot)}
    if rule.for_ > 0:
        out["for"] = format_duration(rule.for_)
    if rule.keep_firing_for > 0:
        out["keep_firing_for"] = format_duration(rule.keep_firing_for)
    # labels are templates too (rendered with the series' labels and the value)
    labels = {prom_label(k): translate_template(v, rule.name)
              for k, v in rule.labels.items() if k != ALERTNAME_LABEL}
    labels.setdefault(SEVERITY_LABEL, rule.severity.value)
    if not labels[SEVERITY_LABEL]:
        del labels[SEVERITY_LABEL]  # the rule states no severity
    if labels:
        out["labels"] = labels
    if rule.annotations:
        out["annotations"] = {k: translate_template(v, rule.name)
                              for k, v in rule.annotations.items()}
    if rule.recovery_threshold is not None:
        result.notes.append((
            rule.name,
            f"recovery_threshold {rule.recovery_threshold:g} not exported: Prometheus "
            "alerts have no hysteresis (resolves as soon as the condition stops holding)",
        ))
    return out


def to_promql(
    condition: Condition | str, per_bot: Sequence[str] = BOT_LABELS
) -> str:
    """The PromQL expression of a condition (compiled or text); raises
    :class:`NotTranslatable` when there is none.

    botmon evaluates a condition inside one bot, so ``sum(x)`` or ``cpu`` sums over that
    bot only. In Prometheus many bots share one database; every aggregation therefore
    also keeps the ``per_bot`` labels (default :data:`BOT_LABELS`), giving one result,
    and one alert carrying those labels, per bot. ``per_bot=()`` aggregates over every
    series Prometheus holds (one result for the whole fleet)."""
    if isinstance(condition, str):
        condition = compile_condition(condition)
    tree = condition.tree
    text = _Translator(tuple(prom_label(b) for b in per_bot)).expr(tree)
    if tree.vtype is VType.SCALAR:  # an alert expression must be a vector
        text = f"vector({text})"
    return text


class _Translator:
    """Syntax tree -> PromQL, keeping the ``per_bot`` labels through aggregations.

    A *labelless* node (one series without labels in botmon: ``sum(x)``, ``cpu``)
    becomes one series per bot labelled with exactly ``per_bot`` when it reads metrics
    (*bot-keyed*), and stays a labelless vector when it is made of numbers only."""

    def __init__(self, per_bot: tuple[str, ...]) -> None:
        self.per_bot = per_bot

    def grouping(self, *first: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*first, *self.per_bot]))

    def on(self) -> str:
        return f"on({', '.join(self.per_bot)})"

    def bot_keyed(self, node: Node) -> bool:
        return node.labelless and node.vtype is not VType.SCALAR and bool(_metrics(node))

    def expr(self, node: Node) -> str:
        if isinstance(node, Number):
            return _number(node.value)
        if isinstance(node, Derived):
            return f"({self.expr(node.expansion)})"
        if isinstance(node, Selector):
            return _selector(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Binary):
            return self.binary(node)
        raise NotTranslatable(f"unsupported expression {type(node).__name__}")

    def call(self, node: Call) -> str:
        func = node.func
        if func == "histogram_quantile":
            sel = node.args[0]
            assert isinstance(sel, Selector) and node.quantile is not None
            inner = f"rate({_selector(sel, 'bucket')})"
            if node.by is not None:
                by = ", ".join(self.grouping("le", *(prom_label(b) for b in node.by)))
                inner = f"sum by ({by}) ({inner})"
            return f"histogram_quantile({_number(node.quantile)}, {inner})"
        if func == "abs" and node.args[0].vtype is VType.SCALAR:
            raise NotTranslatable("abs() of a constant has no PromQL form; write the number")
        args = ", ".join(self.expr(a) for a in node.args)
        if node.without:  # the per-bot labels are kept: they are not dropped
            dropped = ", ".join(prom_label(b) for b in node.by or ())
            return f"{func} without ({dropped}) ({args})"
        if node.by is not None:  # an aggregation over series (by () for a plain sum(x))
            labels = self.grouping(*(prom_label(b) for b in node.by))
            if labels:
                return f"{func} by ({', '.join(labels)}) ({args})"
        return f"{func}({args})"

    def per_bot_number(self, number: str, partner: Node) -> str:
        """A number as one series per bot, for ``sum(x) or 0``: ``vector(0)`` would be
        a series of no bot. The bots are those with a ``target_info`` series or a series
        of a metric the other operand reads."""
        present = " or ".join([*_metrics(partner), "target_info"])
        return f"(group by ({', '.join(self.per_bot)}) ({present}) * {number})"

    def explicit(self, node: Binary, left: str, right: str) -> str:
        """A binary operation with its own ``on``/``ignoring``: as written, with the
        per-bot labels added to ``on(...)`` so that bots never match each other."""
        m = node.matching
        assert m is not None
        names = [prom_label(n) for n in m.labels]
        if m.on:
            names = list(dict.fromkeys([*names, *self.per_bot]))
        text = f"{node.op}{' bool' if node.bool_ else ''} {'on' if m.on else 'ignoring'}"
        text += f"({', '.join(names)})"
        if m.card in ("many-to-one", "one-to-many"):
            group = "group_left" if m.card == "many-to-one" else "group_right"
            text += f" {group}({', '.join(prom_label(n) for n in m.include)})"
        return f"({left} {text} {right})"

    def binary(self, node: Binary) -> str:
        left, right = self.expr(node.left), self.expr(node.right)
        if node.matching is not None:
            return self.explicit(node, left, right)
        lt, rt = node.left.vtype, node.right.vtype
        lkeyed, rkeyed = self.bot_keyed(node.left), self.bot_keyed(node.right)
        if node.op in ("and", "or", "unless"):
            lconst, rconst = not _metrics(node.left), not _metrics(node.right)
            if lt is VType.SCALAR:
                if rkeyed and self.per_bot:
                    left, lconst, lkeyed = self.per_bot_number(left, node.right), False, True
                else:
                    left = f"vector({left})"
            if rt is VType.SCALAR:
                if lkeyed and self.per_bot:
                    right, rconst, rkeyed = self.per_bot_number(right, node.left), False, True
                else:
                    right = f"vector({right})"
            on = ""
            if node.op != "or" and (node.left.labelless or node.right.labelless):
                # a labelless side applies to every series of its bot (botmon: of the bot);
                # a side made of numbers only applies to every series
                keyed = self.per_bot and (lkeyed or rkeyed) and not (lconst or rconst)
                on = f" {self.on()}" if keyed else " on()"
            return f"({left} {node.op}{on} {right})"
        op = f"{node.op} bool" if node.bool_ else node.op
        if lt is VType.SCALAR and rt is VType.SCALAR:
            if node.op in COMPARISONS and not node.bool_:
                return f"(vector({left}) {op} {right})"
            return f"({left} {op} {right})"
        modifier = ""
        if lt is not VType.SCALAR and rt is not VType.SCALAR:
            lconst, rconst = self.constant(node.left, lt), self.constant(node.right, rt)
            if node.right.labelless and (not node.left.labelless or (rconst and lkeyed)):
                modifier = f" {self.match(node.right)} group_left()"
            elif node.left.labelless and (not node.right.labelless or (lconst and rkeyed)):
                modifier = f" {self.match(node.left)} group_right()"
        return f"({left} {op}{modifier} {right})"

    def constant(self, node: Node, vtype: VType) -> bool:
        return vtype is VType.SCALAR or not _metrics(node)

    def match(self, labelless: Node) -> str:
        """``on(...)`` joining a labelless side to the series of the other side."""
        return self.on() if self.per_bot and self.bot_keyed(labelless) else "on()"


def _metrics(node: Node) -> list[str]:
    """The Prometheus names of the metrics ``node`` reads, in order, without repeats."""
    return list(dict.fromkeys(
        prom_metric(s.metric, s.kind if s.component is None else MetricKind.HISTOGRAM,
                    "bucket" if s.vtype is VType.HIST_RANGE else s.component)
        for s in selectors(node)))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "(-Inf)"
    text = repr(value)
    if text.endswith(".0"):
        text = text[:-2]
    return f"({text})" if value < 0 else text


def _selector(sel: Selector, histogram_component: str | None = None) -> str:
    component = histogram_component or sel.component
    kind = sel.kind if sel.component is None else MetricKind.HISTOGRAM
    name = prom_metric(sel.metric, kind, component)
    parts = []
    for m in sel.matchers:
        parts.append(f"{prom_label(m.label)}{m.op}{_quote(m.value)}")
    text = name + ("{" + ",".join(parts) + "}" if parts else "")
    if sel.range_s is not None:
        text += f"[{format_duration(sel.range_s)}]"
    return text


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def format_duration(seconds: float) -> str:
    """A Prometheus duration (``1h30m``, ``90s``, ``1500ms``) for ``seconds``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


_TEMPLATE = re.compile(
    r"\{\{.*?\}\}"
    r"|\{\s*(?P<var>\$?value|rule|labels\[(?P<q>['\"]?)(?P<blabel>[^\]'\"]+)(?P=q)\]"
    r"|\$?labels\.(?P<dlabel>[A-Za-z_][\w.]*))(?::(?P<spec>[^{}]*))?\s*\}"
)
_PRINTF_SPEC = re.compile(r"^[-+ 0]*\d{0,2}(?:\.\d{1,2})?[fFeEgG]$")


def translate_template(text: str, rule_name: str | None = None) -> str:
    """A botmon annotation template in Go-template form, rendering the same text in
    Prometheus: ``{value:.2f}`` -> ``{{ printf "%.2f" $value }}``, ``{value}`` ->
    ``{{ $value }}``, ``{labels[x.y]}`` -> ``{{ $labels.x_y }}``, ``{rule}`` -> the rule's
    name (Prometheus' ``$labels`` are the series' labels, without ``alertname``);
    ``{{ ... }}`` stays as written, with label names in Prometheus form."""

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole.startswith("{{"):
            return re.sub(
                r"(\$labels|\.Labels)\.([A-Za-z_][\w.]*)",
                lambda m: m.group(1) + "." + prom_label(m.group(2)),
                whole,
            )
        label = match.group("blabel") or match.group("dlabel")
        if label is not None:
            return "{{ $labels." + prom_label(label) + " }}"
        if match.group("var") == "rule":
            return rule_name if rule_name is not None else "{{ $labels.alertname }}"
        spec = match.group("spec") or ""
        if _PRINTF_SPEC.match(spec):
            return '{{ printf "%' + spec + '" $value }}'
        return "{{ $value }}"

    return _TEMPLATE.sub(substitute, text)
